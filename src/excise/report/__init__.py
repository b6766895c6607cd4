"""``excise report``: records → analysis → rendering, from local files only.

- :mod:`~excise.report.records` — a run directory as a :class:`RunRecord`; labels of runs;
- :mod:`~excise.report.analysis`, :mod:`~excise.report.baselines`,
  :mod:`~excise.report.leakage` — the numbers (no formatting, no drawing);
- :mod:`~excise.report.plots` — the PNG figures (drawing only);
- :mod:`~excise.report.markdown` — ``report.md``, one function per section;
- :mod:`~excise.report.demo` — ``excise demo``, a sweep followed by its report.
"""
