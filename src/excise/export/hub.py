"""Push an export folder to the Hugging Face hub (``excise export ... --push-to-hub REPO``).

The upload is huggingface_hub's ``create_repo`` + ``upload_folder`` of the finished export,
nothing else (no task files, no run directory). ``dry_run`` lists what would be uploaded
without touching the network. The token is huggingface_hub's usual one (``HF_TOKEN`` or
``hf auth login``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from excise.errors import UserError


@dataclass
class Upload:
    """What a push sent (or, with ``dry_run``, would send): repo, files (name, bytes)."""

    repo_id: str
    url: str
    files: list[tuple[str, int]]
    dry_run: bool


def folder_files(folder: Path) -> list[tuple[str, int]]:
    """Every file under ``folder`` as (relative POSIX path, size), sorted."""
    folder = Path(folder)
    return sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file()
    )


def check_repo_id(repo_id: str) -> None:
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise UserError(f"--push-to-hub {repo_id!r}: expected a model repo id like 'user/name'")


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    commit_message: str = "excise export",
) -> Upload:
    """Upload ``folder`` to the model repo ``repo_id`` (created if missing)."""
    folder = Path(folder)
    check_repo_id(repo_id)
    files = folder_files(folder)
    url = f"https://huggingface.co/{repo_id}"
    if dry_run:
        return Upload(repo_id, url, files, dry_run=True)
    try:
        import huggingface_hub
    except ImportError:
        raise UserError("--push-to-hub needs huggingface_hub: pip install 'excise[hf]'") from None
    try:
        repo = huggingface_hub.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        huggingface_hub.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=commit_message
        )
    except Exception as e:  # network, authentication, permission: the user's to fix
        raise UserError(
            f"could not push {folder} to the hub repo {repo_id}: {e}. The export itself is "
            f"complete; push it later with `hf upload {repo_id} {folder}`"
        ) from None
    return Upload(repo_id, str(getattr(repo, "url", url)), files, dry_run=False)
