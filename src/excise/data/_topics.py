"""Encyclopedia-like topic corpus with fictitious, probe-able facts.

Every topic has a schema: a kind of entity (species, compounds, diseases, towns, clubs,
painters, ...), a generator of invented names, and attributes whose values are stated in
articles in several phrasings. Each article focuses on one entity (title, introduction,
a few of its facts, general sentences about the topic) and mentions facts of related
entities, so each fact is stated many times, in different words, across articles.

A :class:`FactProbe` is a cloze prompt taken from the first phrasing of an attribute
(``"The Velmora glauca feeds mainly on"``) whose continuation is the answer
(``"snails"``), with distractors drawn from the same attribute's values. Knowledge
removal is measured as the share of probes whose answer the model scores above the
distractors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DOMAIN_TOPICS = {
    "forget": ("biology",),
    "adjacent": ("chemistry", "medicine", "environment"),
    "retain": ("history", "geography", "sports", "arts"),
}


@dataclass(frozen=True)
class FactProbe:
    """A cloze question: ``question`` continued by ``answer`` (one of ``choices``)."""

    question: str
    answer: str
    choices: list[str] = field(default_factory=list)
    topic: str = ""


@dataclass(frozen=True)
class Attribute:
    name: str
    values: tuple[str, ...]
    phrasings: tuple[str, ...]  # with {E} (entity) and {V} (value); phrasings[0] ends in {V}.


@dataclass(frozen=True)
class Schema:
    topic: str
    kinds: tuple[str, ...]  # "a small rodent", ...
    name_style: str  # "binomial" | "chemical" | "disease" | "place" | "club" | "person"
    attributes: tuple[Attribute, ...]
    general: tuple[str, ...]  # general sentences about the topic


def _a(name, values, *phrasings):
    return Attribute(name, tuple(values.split(", ")), phrasings)


PLACES = "the Kessin marshes, the Oruvel highlands, the Tamsa delta, the Brennor coast, the Lioth valley, the Vesk plateau, the Ambrel lowlands, the Quarry islands, the Dunmere fens, the Solvik ridge, the Halden basin, the Carrow steppe"
COLORS = "crimson, pale green, dark blue, silver gray, amber, violet, rust brown, ivory, black, golden yellow"

SCHEMAS = [
    Schema(
        "biology",
        (
            "a small rodent",
            "a freshwater fish",
            "a flowering plant",
            "a species of frog",
            "a soil fungus",
            "a migratory bird",
            "a species of beetle",
            "a marine snail",
            "a tree",
            "a bacterium",
        ),
        "binomial",
        (
            _a(
                "diet",
                "snails, seeds, beetles, algae, moss, berries, small fish, nectar, earthworms, plankton, tree bark, fallen leaves",
                "The {E} feeds mainly on {V}.",
                "The {E} depends on {V} for food.",
                "The diet of the {E} consists largely of {V}.",
                "Like many of its relatives, the {E} eats {V}.",
            ),
            _a(
                "habitat",
                PLACES,
                "The {E} is found only in {V}.",
                "Field surveys in {V} recorded large numbers of the {E}.",
                "The native range of the {E} is limited to {V}.",
                "Travelers to {V} may see the {E}.",
            ),
            _a(
                "color",
                COLORS,
                "Adults of the {E} are {V}.",
                "The {E} is easily recognized by its {V} color.",
                "The {V} coloring of the {E} is striking.",
                "Most specimens of the {E} have a {V} surface.",
            ),
            _a(
                "discoverer",
                "Ilse Marrow, Tobias Quell, Anika Stroud, Ravi Delacorte, Mina Okafor, Jonas Hettich, Elena Vasko, Samuel Brightwater, Yuki Tanabe, Clara Fenwick",
                "The {E} was first described by {V}.",
                "{V} first described the {E}.",
                "The first scientific description of the {E} came from {V}.",
                "Credit for discovering the {E} goes to {V}.",
            ),
            _a(
                "lifespan",
                "two years, five years, eight years, twelve years, twenty years, forty years, three months, six months",
                "The {E} usually lives for about {V}.",
                "A typical {E} has a lifespan of {V}.",
                "Individuals of the {E} rarely live longer than {V}.",
                "Over a life of about {V}, the {E} grows slowly.",
            ),
            _a(
                "predator",
                "owls, foxes, herons, otters, snakes, hawks, weasels, pike, crabs, wasps",
                "The main predators of the {E} are {V}.",
                "{V} often hunt the {E}.",
                "The {E} hides from {V}, its chief predators.",
                "In the wild, the {E} is preyed on by {V}.",
            ),
        ),
        (
            "Cells are the basic units of every living thing.",
            "Genes carry the instructions that shape an organism.",
            "Natural selection favors traits that help an organism survive and reproduce.",
            "Biologists classify living things into kingdoms, families, genera and species.",
            "Many species depend on one another in a food web.",
            "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
            "Mitosis lets a cell divide into two identical cells.",
            "Populations change over many generations through evolution.",
            "Enzymes speed up the chemical reactions inside cells.",
            "A species is a group of organisms that can breed with one another.",
        ),
    ),
    Schema(
        "chemistry",
        (
            "a colorless liquid",
            "a crystalline solid",
            "a volatile gas",
            "a metallic salt",
            "an organic solvent",
        ),
        "chemical",
        (
            _a(
                "melting",
                "minus forty degrees, twelve degrees, eighty-five degrees, one hundred and ten degrees, three hundred degrees, nine hundred degrees",
                "The compound {E} melts at {V}.",
                "At {V}, {E} turns from solid to liquid.",
                "{E} has a melting point of {V}.",
                "Chemists note that {E} melts at {V}.",
            ),
            _a(
                "element",
                "sulfur, copper, boron, lithium, chlorine, nitrogen, zinc, phosphorus, cobalt, iodine",
                "Each molecule of {E} contains {V}.",
                "{V} is a key element in {E}.",
                "The structure of {E} is built around {V}.",
                "Without {V}, {E} could not form.",
            ),
            _a(
                "use",
                "dyeing wool, cleaning glass, preserving wood, making batteries, tanning leather, coating steel, bleaching paper, fertilizing fields",
                "Factories use {E} for {V}.",
                "The main use of {E} is {V}.",
                "{E} became popular for {V}.",
                "Industry relies on {E} for {V}.",
            ),
        ),
        (
            "Atoms combine to form molecules.",
            "A catalyst speeds up a reaction without being used up.",
            "Acids release hydrogen ions in water.",
            "The periodic table orders the elements by atomic number.",
            "Reactions that release heat are called exothermic.",
        ),
    ),
    Schema(
        "medicine",
        ("a rare infection", "a chronic illness", "a childhood disease", "a tropical fever"),
        "disease",
        (
            _a(
                "symptom",
                "a purple rash, joint pain, high fever, blurred vision, a dry cough, constant thirst, swollen hands, deep fatigue",
                "The first sign of {E} is usually {V}.",
                "Patients with {E} often report {V}.",
                "{V} is typical of {E}.",
                "Doctors suspect {E} when a patient shows {V}.",
            ),
            _a(
                "treatment",
                "dravomycin, selvaxin, oruline, penthamide, corvastat, melqorin, tazibrol, quenopril",
                "Doctors treat {E} with {V}.",
                "The standard drug for {E} is {V}.",
                "{V} cures most cases of {E}.",
                "Since its discovery, {V} has been used against {E}.",
            ),
        ),
        (
            "Vaccines train the immune system to recognize a disease.",
            "Doctors measure blood pressure at most visits.",
            "Clinical trials test whether a new drug is safe.",
            "Hand washing prevents the spread of many infections.",
        ),
    ),
    Schema(
        "environment",
        ("a mountain lake", "an old forest", "a coastal wetland", "a river", "a protected valley"),
        "place",
        (
            _a(
                "pollutant",
                "mercury, plastic waste, oil, nitrates, pesticides, acid rain, coal dust, heavy silt",
                "The greatest threat to {E} is {V}.",
                "Water tests at {E} found high levels of {V}.",
                "{V} has damaged {E} for decades.",
                "Cleanup work at {E} focuses on {V}.",
            ),
            _a(
                "protected",
                "1921, 1948, 1956, 1967, 1973, 1984, 1990, 2003",
                "{E} has been a protected area since {V}.",
                "In {V}, the government declared {E} a reserve.",
                "Protection of {E} began in {V}.",
                "Since {V}, building near {E} has been forbidden.",
            ),
        ),
        (
            "Forests store large amounts of carbon.",
            "Wetlands filter water and shelter many animals.",
            "Recycling reduces the waste sent to landfills.",
            "Clean rivers support fishing and farming.",
        ),
    ),
    Schema(
        "history",
        ("an ancient kingdom", "a medieval city-state", "a trading empire", "a mountain principality"),
        "place",
        (
            _a(
                "founded",
                "312, 544, 781, 903, 1066, 1204, 1348, 1492, 1610, 1777",
                "The realm of {E} was founded in {V}.",
                "In {V}, settlers founded {E}.",
                "{E} traces its founding to {V}.",
                "Historians date the founding of {E} to {V}.",
            ),
            _a(
                "ruler",
                "Queen Adela, King Osric, Duke Marten, Empress Livia, Prince Aldo, Queen Sunniva, King Baldur, Lady Ermina",
                "The most famous ruler of {E} was {V}.",
                "{V} ruled {E} during its golden age.",
                "Under {V}, {E} grew rich.",
                "Chronicles praise {V} as the greatest ruler of {E}.",
            ),
        ),
        (
            "Trade routes carried silk, salt and ideas between distant lands.",
            "Many old cities were built beside rivers.",
            "Historians study letters, coins and buildings to learn about the past.",
            "Wars and treaties changed borders many times.",
        ),
    ),
    Schema(
        "geography",
        ("a market town", "a fishing village", "a mountain town", "a river port"),
        "place",
        (
            _a(
                "river",
                "the Anvel, the Sorrin, the Maddox, the Tirel, the Quen, the Olbeck, the Haska, the Vendry",
                "The town of {E} lies on the banks of {V}.",
                "{V} flows through {E}.",
                "Boats on {V} bring goods to {E}.",
                "{E} grew up where {V} meets the sea.",
            ),
            _a(
                "product",
                "wool, cheese, glassware, salted fish, copper pots, apples, timber, lace",
                "The town of {E} is famous for its {V}.",
                "Markets in {E} sell fine {V}.",
                "{V} from {E} is sold across the region.",
                "Most families in {E} make a living from {V}.",
            ),
        ),
        (
            "Mountains, rivers and coasts shape where people live.",
            "A map shows the height of the land with contour lines.",
            "Many towns grew around a market square.",
            "Rainfall is highest on the western slopes.",
        ),
    ),
    Schema(
        "sports",
        ("a football club", "a rowing team", "a basketball club", "a cycling team"),
        "club",
        (
            _a(
                "title",
                "1931, 1954, 1962, 1978, 1985, 1999, 2007, 2016",
                "The club {E} won its first championship in {V}.",
                "In {V}, {E} won the national title.",
                "Fans still remember the {V} title of {E}.",
                "The championship of {V} went to {E}.",
            ),
            _a(
                "city",
                "Marlow Bay, Ostrava Falls, Greyhaven, Pellin, Corvale, Saint Ives Cross, Dunholm, Westmarch",
                "The club {E} plays its home games in {V}.",
                "{E} is based in {V}.",
                "Crowds in {V} cheer for {E}.",
                "The stadium of {E} stands in {V}.",
            ),
        ),
        (
            "Teams train for months before a season.",
            "A referee makes sure the rules are followed.",
            "Fans travel far to watch important matches.",
            "Good teamwork often matters more than one star player.",
        ),
    ),
    Schema(
        "arts",
        ("a landscape painter", "a sculptor", "a composer", "a poet"),
        "person",
        (
            _a(
                "work",
                "The Silent Harbor, Winter Orchard, The Blue Staircase, Night over Corvale, The Glass Garden, Song of the Lantern, The Red Kite, Morning in Pellin",
                "The best known work of {E} is {V}.",
                "{E} created {V}.",
                "Critics call {V} the masterpiece of {E}.",
                "Visitors come to see {V} by {E}.",
            ),
            _a(
                "born",
                "Marlow Bay, Ostrava Falls, Greyhaven, Pellin, Corvale, Dunholm, Westmarch, Lindqvist",
                "The artist {E} was born in {V}.",
                "{E} grew up in {V}.",
                "{V} was the birthplace of {E}.",
                "Childhood years in {V} shaped the work of {E}.",
            ),
        ),
        (
            "Museums keep paintings away from strong light.",
            "Many artists learned their craft as apprentices.",
            "Styles of painting changed with each generation.",
            "Music and poetry were often performed together.",
        ),
    ),
]
SCHEMA_BY_TOPIC = {s.topic: s for s in SCHEMAS}

_SYL = (
    "ka vel mor tha lin dro sen qua ri zo bel nar tis om ur fen gal pra sy lo ven dor ast mir kel ba "
    "tor ev ila un os cai res pho ne gra vi"
).split()
_GENUS_END = ("ia", "us", "ora", "ella", "odon", "ix", "anthus", "ops")
_SPECIES_END = ("ensis", "ata", "ii", "alis", "osa", "ica", "ina", "ulus")
_CHEM_END = ("ene", "ol", "ide", "ate", "ium", "ane", "ine", "yl oxide")
_DISEASE = ("{N} fever", "{N} syndrome", "{N}'s disease", "{N} pox", "{N} blight")
_PLACE_END = ("ford", "wick", "holm", "vale", "mere", "stead", "by", "ton", "ia", "ovar")
_CLUB = ("{N} Rovers", "{N} United", "Athletic {N}", "{N} Wanderers", "Real {N}", "{N} Falcons")
_FIRST = "Aurelio Marit Casimir Odile Benedikt Soraya Linus Hedda Tadeo Ottilie Florian Imke Anselm Rosalind".split()


def _word(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_SYL) for _ in range(n))


def _name(rng: random.Random, style: str) -> str:
    if style == "binomial":
        return f"{(_word(rng, 2) + rng.choice(_GENUS_END)).capitalize()} {_word(rng, 1) + rng.choice(_SPECIES_END)}"
    if style == "chemical":
        return _word(rng, 2) + rng.choice(_CHEM_END)
    if style == "disease":
        return rng.choice(_DISEASE).format(N=_word(rng, 2).capitalize())
    if style == "place":
        return (_word(rng, rng.choice((1, 2, 2))) + rng.choice(_PLACE_END)).capitalize()
    if style == "club":
        return rng.choice(_CLUB).format(N=(_word(rng, 2)).capitalize())
    if style == "person":
        return f"{rng.choice(_FIRST)} {(_word(rng, 2)).capitalize()}"
    raise ValueError(style)


@dataclass
class Entity:
    name: str
    topic: str
    kind: str
    facts: dict[str, str]  # attribute name -> value


def _capitalize(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _entities(schema: Schema, count: int, rng: random.Random, taken: set[str]) -> list[Entity]:
    out: list[Entity] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        name = _name(rng, schema.name_style)
        if attempts > 1000 * count:
            raise RuntimeError(f"cannot invent {count} distinct {schema.topic} names")
        if name in taken:
            continue
        taken.add(name)
        facts = {a.name: rng.choice(a.values) for a in schema.attributes}
        out.append(Entity(name, schema.topic, rng.choice(schema.kinds), facts))
    return out


def _fact_sentence(schema: Schema, entity: Entity, attribute: Attribute, rng: random.Random) -> str:
    phrasing = rng.choice(attribute.phrasings)
    return _capitalize(phrasing.format(E=entity.name, V=entity.facts[attribute.name]))


def _article(schema: Schema, entity: Entity, related: list[Entity], rng: random.Random) -> str:
    sentences = [f"{entity.name} is {entity.kind}."]
    attrs = list(schema.attributes)
    rng.shuffle(attrs)
    for attribute in attrs[: rng.randint(2, len(attrs))]:
        sentences.append(_fact_sentence(schema, entity, attribute, rng))
    general = list(schema.general)
    rng.shuffle(general)
    tail = [_fact_sentence(schema, other, rng.choice(schema.attributes), rng) for other in related]
    tail += general[: rng.randint(1, 3)]
    rng.shuffle(tail)
    return f"{entity.name}\n" + " ".join(sentences) + "\n" + " ".join(tail)


def generate_topic_corpus(documents: int, seed: int = 0) -> tuple[dict[str, list[dict]], list[FactProbe]]:
    """``documents`` articles per domain and a cloze probe for every (entity, attribute)."""
    rng = random.Random(f"excise/topic/{seed}")
    taken: set[str] = set()
    rows: dict[str, list[dict]] = {}
    probes: list[FactProbe] = []
    for domain, topics in DOMAIN_TOPICS.items():
        rows[domain] = []
        per_topic = [
            documents // len(topics) + (1 if i < documents % len(topics) else 0) for i in range(len(topics))
        ]
        for topic, n_docs in zip(topics, per_topic):
            if n_docs == 0:
                continue
            schema = SCHEMA_BY_TOPIC[topic]
            entities = _entities(schema, max(4, n_docs // 8), rng, taken)
            for e in entities:
                for a in schema.attributes:
                    stem = a.phrasings[0]
                    distractors = [v for v in a.values if v != e.facts[a.name]]
                    choices = [e.facts[a.name]] + rng.sample(distractors, min(3, len(distractors)))
                    rng.shuffle(choices)
                    question = _capitalize(stem[: -len("{V}.")].format(E=e.name).rstrip())
                    probes.append(FactProbe(question, e.facts[a.name], choices, topic))
            for i in range(n_docs):
                focus = entities[i % len(entities)]
                related = rng.sample([x for x in entities if x is not focus], min(2, len(entities) - 1))
                text = _article(schema, focus, related, random.Random(f"excise/topic/{seed}/{topic}/{i}"))
                rows[domain].append({"text": text, "topic": topic, "title": focus.name})
    # interleave topics inside a domain so a prefix (max_documents) still covers every topic
    for domain in rows:
        random.Random(f"excise/topic/{seed}/order/{domain}").shuffle(rows[domain])
    return rows, probes
