"""A small grammar engine for parallel English/Spanish children's stories.

A story draws its cast (hero, friend, parent, helper), props (object, place, food, animal)
and a *shape* (lost object, trip, quarrel, learning a skill, rescue, surprise, ...). Each
shape is a sequence of stages; each stage picks one of several sentence templates written
in both languages. Template slots (``{the_obj}``, ``{feel}``, ...) are rendered once per
sentence as an (English, Spanish) pair, so the two versions stay parallel, and the Spanish
side gets article, adjective and participle agreement from the lexicon's genders.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from excise.data import _lexicon as L

_ES_ART = {
    "the": {("m", False): "el", ("f", False): "la", ("m", True): "los", ("f", True): "las"},
    "a": {("m", False): "un", ("f", False): "una", ("m", True): "unos", ("f", True): "unas"},
    "this": {("m", False): "este", ("f", False): "esta", ("m", True): "estos", ("f", True): "estas"},
    "his": {("m", False): "su", ("f", False): "su", ("m", True): "sus", ("f", True): "sus"},
    "her": {("m", False): "su", ("f", False): "su", ("m", True): "sus", ("f", True): "sus"},
    "their": {("m", False): "su", ("f", False): "su", ("m", True): "sus", ("f", True): "sus"},
    "": {("m", False): "", ("f", False): "", ("m", True): "", ("f", True): ""},
}


def _a_an(phrase: str) -> str:
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def noun_phrase(
    noun: L.Noun, det: str, adj: L.Adjective | None = None, plural: bool = False
) -> tuple[str, str]:
    """Render ``det adj noun`` in English and ``art noun adj`` in agreeing Spanish."""
    en_noun = noun.en_pl if plural else noun.en
    en = f"{adj.en} {en_noun}" if adj else en_noun
    if det == "a" and not plural:
        en = _a_an(en)
    elif det and det != "a":
        en = f"{det} {en}"
    es_noun = noun.es_pl if plural else noun.es
    es = f"{es_noun} {adj.es(noun.gender, plural)}" if adj else es_noun
    art = _ES_ART[det][(noun.gender, plural)]
    return en, (f"{art} {es}" if art else es)


@dataclass
class Character:
    name: str
    gender: str  # natural gender, "m" | "f"
    kind: L.Noun  # girl / boy / animal noun (its Spanish gender equals ``gender``)
    trait: L.Adjective


_CHILD = {
    "f": L.Noun("girl", "girls", "niña", "niñas", "f"),
    "m": L.Noun("boy", "boys", "niño", "niños", "m"),
}


def _character(rng: random.Random, animal_share: float, exclude: str = "") -> Character:
    if rng.random() < animal_share:
        kind = rng.choice(L.ANIMALS)
        gender = kind.gender
    else:
        gender = rng.choice("mf")
        kind = _CHILD[gender]
    names = L.NAMES_F if gender == "f" else L.NAMES_M
    name = rng.choice([n for n in names if n != exclude])
    return Character(name, gender, kind, rng.choice(L.TRAITS))


class Story:
    """One story's cast and props, and the renderer of its template slots."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.hero = _character(rng, 0.35)
        self.friend = _character(rng, 0.35, exclude=self.hero.name)
        self.parent = rng.choice([("Mom", "mamá", "f"), ("Dad", "papá", "m")])
        self.obj = rng.choice(L.OBJECTS)
        self.obj_adj = rng.choice(L.COLORS + L.SIZES_AND_LOOKS)
        self.place = rng.choice(L.PLACES)
        self.spot = rng.choice(L.SPOTS)
        self.food = rng.choice(L.FOODS)
        self.animal = rng.choice(L.ANIMALS)
        self.person = rng.choice(L.PEOPLE)
        self.skill = rng.choice(L.SKILLS)
        self.weather = rng.choice(L.WEATHER)
        self.time = rng.choice(L.TIMES)
        self.moral = rng.choice(L.MORALS)

    # -- slots ----------------------------------------------------------------------
    def _feel(self, gender: str, plural: bool = False) -> tuple[str, str]:
        adj = self.rng.choice(L.FEELINGS)
        return adj.en, adj.es(gender, plural)

    def slot(self, key: str) -> tuple[str, str]:  # noqa: C901 - a flat table of slots
        r, h, f = self.rng, self.hero, self.friend
        both_gender = "f" if h.gender == f.gender == "f" else "m"
        if key == "Hero":
            return h.name, h.name
        if key == "Friend":
            return f.name, f.name
        if key == "hero_a":
            return noun_phrase(h.kind, "a", h.trait)
        if key == "friend_a":
            return noun_phrase(f.kind, "a", f.trait)
        if key == "hero_kind":
            return noun_phrase(h.kind, "the")
        if key == "named":
            return "named", "llamada" if h.kind.gender == "f" else "llamado"
        if key == "friend_named":
            return "named", "llamada" if f.kind.gender == "f" else "llamado"
        if key in ("he", "He"):
            en = "he" if h.gender == "m" else "she"
            return (en.capitalize() if key == "He" else en), ("él" if h.gender == "m" else "ella")
        if key in ("fhe", "Fhe"):
            en = "he" if f.gender == "m" else "she"
            return (en.capitalize() if key == "Fhe" else en), ("él" if f.gender == "m" else "ella")
        if key == "his":
            return ("his" if h.gender == "m" else "her"), "su"
        if key == "him":
            return ("him" if h.gender == "m" else "her"), ("lo" if h.gender == "m" else "la")
        if key == "fhim":
            return ("him" if f.gender == "m" else "her"), ("lo" if f.gender == "m" else "la")
        if key == "feel":
            return self._feel(h.gender)
        if key == "ffeel":
            return self._feel(f.gender)
        if key == "both_feel":
            return self._feel(both_gender, plural=True)
        if key == "o_a":  # agreement of a participle with the hero
            return "", "a" if h.gender == "f" else "o"
        if key == "fo_a":
            return "", "a" if f.gender == "f" else "o"
        if key == "os_as":
            return "", "as" if both_gender == "f" else "os"
        if key == "trait":
            return h.trait.en, h.trait.es(h.gender)
        if key == "ftrait":
            return f.trait.en, f.trait.es(f.gender)
        if key == "a_obj":
            return noun_phrase(self.obj, "a", self.obj_adj)
        if key == "the_obj":
            return noun_phrase(self.obj, "the", self.obj_adj)
        if key == "obj":
            return noun_phrase(self.obj, "the")
        if key == "his_obj":
            en, es = noun_phrase(self.obj, "", self.obj_adj)
            return f"{self.slot('his')[0]} {en}", f"su {es}"
        if key == "it":
            return "it", "la" if self.obj.gender == "f" else "lo"
        if key == "obj_state":
            adj = r.choice(L.STATES)
            return adj.en, adj.es(self.obj.gender)
        if key == "obj_o_a":
            return "", "a" if self.obj.gender == "f" else "o"
        if key == "the_place":
            return noun_phrase(self.place, "the")
        if key == "a_place":
            return noun_phrase(self.place, "a", r.choice(L.SIZES_AND_LOOKS))
        if key == "the_spot":
            return noun_phrase(self.spot, "the")
        if key == "any_spot":
            return noun_phrase(r.choice(L.SPOTS), "the")
        if key == "any_place":
            return noun_phrase(r.choice(L.PLACES), "the")
        if key == "a_food":
            return noun_phrase(self.food, "a")
        if key == "the_food":
            return noun_phrase(self.food, "the")
        if key == "foods":
            return noun_phrase(r.choice(L.FOODS), "", plural=True)
        if key == "foods2":
            return noun_phrase(r.choice(L.FOODS), "", r.choice(L.SIZES_AND_LOOKS), plural=True)
        if key == "a_animal":
            return noun_phrase(self.animal, "a", r.choice(L.SIZES_AND_LOOKS + L.COLORS))
        if key == "the_animal":
            return noun_phrase(self.animal, "the")
        if key == "animal_feel":
            adj = r.choice(L.FEELINGS)
            return adj.en, adj.es(self.animal.gender)
        if key == "animal_o_a":
            return "", "a" if self.animal.gender == "f" else "o"
        if key == "animals":
            return noun_phrase(r.choice(L.ANIMALS), "", r.choice(L.COLORS + L.SIZES_AND_LOOKS), plural=True)
        if key == "things":
            return noun_phrase(r.choice(L.OBJECTS), "", r.choice(L.COLORS + L.SIZES_AND_LOOKS), plural=True)
        if key == "a_thing":
            return noun_phrase(r.choice(L.OBJECTS), "a", r.choice(L.COLORS + L.SIZES_AND_LOOKS))
        if key == "a_person":
            return noun_phrase(self.person, "a", r.choice(L.TRAITS))
        if key == "the_person":
            return noun_phrase(self.person, "the")
        if key == "person_o_a":
            return "", "a" if self.person.gender == "f" else "o"
        if key == "Parent":
            return self.parent[0], self.parent[1]
        if key == "his_parent":
            return f"{self.slot('his')[0]} {self.parent[0].lower()}", f"su {self.parent[1]}"
        if key == "skill":
            return self.skill
        if key == "opening_time":
            w = self.weather
            en_time, es_time, g = self.time
            return f"{w[0]} {en_time}", f"{es_time} {w[2] if g == 'f' else w[1]}"
        if key == "una":
            return "", "una" if self.time[2] == "f" else "un"
        if key == "moral":
            return self.moral
        if key == "a_thing_box":
            box = r.choice(
                [n for n in L.OBJECTS if n.es in ("caja", "cesta", "mochila", "bolsa", "cofre", "frasco")]
            )
            return noun_phrase(box, "a", r.choice(L.COLORS + L.SIZES_AND_LOOKS))
        if key == "the_things":
            en, es = noun_phrase(r.choice(L.OBJECTS), "the", plural=True)
            return en.removeprefix("the "), es
        if key == "the_foods":
            en, es = noun_phrase(r.choice(L.FOODS), "the", plural=True)
            return en.removeprefix("the "), es
        if key == "animal_look":
            adj = r.choice(L.SIZES_AND_LOOKS)
            return adj.en, adj.es(self.animal.gender)
        if key == "food_pl":
            return self.food.en_pl, self.food.es_pl
        if key == "the_best_food":
            art = _ES_ART["the"][(self.food.gender, True)]
            best = "mejores"
            return f"the best {self.food.en_pl}", f"{art} {best} {self.food.es_pl}"
        if key == "a_place_full_of_things":
            place = r.choice(L.PLACES)
            en, es = noun_phrase(place, "a", r.choice(L.SIZES_AND_LOOKS))
            t_en, t_es = self.slot("things")
            full = "llena" if place.gender == "f" else "lleno"
            return f"{en} full of {t_en}", f"{es} {full} de {t_es}"
        if key == "obj_noun":
            return self.obj.en, self.obj.es
        if key == "friend_amigo":
            return "", "una amiga" if f.gender == "f" else "un amigo"
        if key == "el_mejor_amigo":
            return "", "la mejor amiga" if f.gender == "f" else "el mejor amigo"
        if key == "los_dos":
            return "", "las dos amigas" if both_gender == "f" else "los dos amigos"
        if key == "ah_os_as":
            return "", "as" if h.gender == self.animal.gender == "f" else "os"
        if key == "color":
            c = r.choice(L.COLORS)
            return c.en, c.es_m
        raise KeyError(key)


class _View(dict):
    """Mapping for ``str.format_map`` that renders each slot once per sentence."""

    def __init__(self, story: Story, pairs: dict, lang: int):
        super().__init__()
        self.story, self.pairs, self.lang = story, pairs, lang

    def __missing__(self, key: str) -> str:
        if key not in self.pairs:
            self.pairs[key] = self.story.slot(key)
        return self.pairs[key][self.lang]


def _fix_spanish(text: str) -> str:
    text = re.sub(r"\b([Dd])e el\b", r"\1el", text)
    text = re.sub(r"\b([Aa]) el\b", r"\1l", text)
    return text


def _capitalize(sentence: str) -> str:
    for i, ch in enumerate(sentence):
        if ch.isalpha():
            return sentence[:i] + ch.upper() + sentence[i + 1 :]
    return sentence


def render(story: Story, template: tuple[str, str]) -> tuple[str, str]:
    pairs: dict = {}
    en = template[0].format_map(_View(story, pairs, 0))
    es = template[1].format_map(_View(story, pairs, 1))
    return _capitalize(en), _capitalize(es)


# ---------------------------------------------------------------------------------------
# templates by stage: lists of (English, Spanish)

T = dict[str, list[tuple[str, str]]]

STAGES: T = {
    "opening": [
        (
            "Long ago, in a house near {the_place}, lived {hero_a} {named} {Hero}.",
            "Hace mucho tiempo, en una casa cerca de {the_place}, vivía {hero_a} {named} {Hero}.",
        ),
        (
            "{Hero} was {hero_a}. {He} liked {foods} and {things}.",
            "{Hero} era {hero_a}. Le gustaban {the_foods} y {the_things}.",
        ),
        ("Once upon a time, there was {hero_a} {named} {Hero}.", "Había una vez {hero_a} {named} {Hero}."),
        (
            "One {opening_time}, {hero_a} {named} {Hero} woke up early.",
            "{una} {opening_time}, {hero_a} {named} {Hero} se despertó temprano.",
        ),
        (
            "{Hero} was {hero_a} who lived near {the_place}.",
            "{Hero} era {hero_a} que vivía cerca de {the_place}.",
        ),
        (
            "There once lived {hero_a} {named} {Hero}. {He} was very {trait}.",
            "Una vez vivía {hero_a} {named} {Hero}. Era muy {trait}.",
        ),
        (
            "It was a {opening_time}. {Hero}, {hero_a}, looked out of the window.",
            "Era {una} {opening_time}. {Hero}, {hero_a}, miró por la ventana.",
        ),
        (
            "In a little town there lived {hero_a} {named} {Hero}.",
            "En un pueblo pequeño vivía {hero_a} {named} {Hero}.",
        ),
    ],
    "has_obj": [
        ("{Hero} had {a_obj}. {He} loved it very much.", "{Hero} tenía {a_obj}. {it} quería mucho."),
        (
            "{Hero} kept {his_obj} in a box under {the_spot}.",
            "{Hero} guardaba {his_obj} en una caja debajo de {the_spot}.",
        ),
        ("Every day, {Hero} played with {his_obj}.", "Todos los días, {Hero} jugaba con {his_obj}."),
        (
            "{his_parent} had given {him} {a_obj} for {his} birthday.",
            "{his_parent} le había regalado {a_obj} por su cumpleaños.",
        ),
        ("{Hero}'s favorite toy was {a_obj}.", "El juguete favorito de {Hero} era {a_obj}."),
    ],
    "lose_obj": [
        (
            "{Hero} left {his_obj} at {any_place}, and when {he} came back, it was gone.",
            "{Hero} dejó {his_obj} en {any_place}, y cuando volvió, ya no estaba.",
        ),
        (
            "{Hero} put {the_obj} down to pick up {a_thing}. Then {he} forgot where it was.",
            "{Hero} dejó {the_obj} para recoger {a_thing}. Después olvidó dónde estaba.",
        ),
        ("One day, {Hero} could not find {his_obj}.", "Un día, {Hero} no pudo encontrar {his_obj}."),
        ("But then {his_obj} was gone!", "¡Pero de repente {his_obj} había desaparecido!"),
        (
            "After lunch, {Hero} looked for {the_obj}, but it was not there.",
            "Después de comer, {Hero} buscó {the_obj}, pero no estaba allí.",
        ),
        ("A strong wind blew {his_obj} away.", "Un viento fuerte se llevó {his_obj}."),
    ],
    "search": [
        (
            "{Hero} opened {a_thing_box} and looked inside, but found only {things}.",
            "{Hero} abrió {a_thing_box} y miró dentro, pero solo encontró {things}.",
        ),
        ("{Friend} helped {him} look in {any_place}.", "{Friend} {him} ayudó a buscar en {any_place}."),
        ("{He} looked under {any_spot}.", "Buscó debajo de {any_spot}."),
        (
            "{He} looked behind {any_spot}, but {the_obj} was not there.",
            "Buscó detrás de {any_spot}, pero {the_obj} no estaba allí.",
        ),
        (
            '{Hero} asked {the_animal}, "Have you seen my {obj_noun}?"',
            "{Hero} le preguntó a {the_animal}: «¿Has visto mi {obj_noun}?»",
        ),
        (
            "{Hero} felt {feel}. {He} searched in {any_place} and near {any_spot}.",
            "{Hero} se sintió {feel}. Buscó en {any_place} y cerca de {any_spot}.",
        ),
        (
            '"Where can it be?" {Hero} asked {his_parent}.',
            "«¿Dónde estará?», le preguntó {Hero} a {his_parent}.",
        ),
        (
            "{He} walked to {any_place} and looked everywhere.",
            "Caminó hasta {any_place} y buscó por todas partes.",
        ),
    ],
    "found_obj": [
        (
            "Behind {any_spot}, something {color} was shining. It was {the_obj}!",
            "Detrás de {any_spot}, algo {color} brillaba. ¡Era {the_obj}!",
        ),
        (
            "At last, {Hero} found {the_obj} under {the_spot}.",
            "Por fin, {Hero} encontró {the_obj} debajo de {the_spot}.",
        ),
        (
            'Then {Friend} came and said, "Look, it is behind {the_spot}!"',
            "Entonces llegó {Friend} y dijo: «¡Mira, está detrás de {the_spot}!»",
        ),
        (
            "{the_animal} had {obj} in its mouth! It was a little {obj_state}.",
            "¡{the_animal} tenía {obj} en la boca! Estaba un poco {obj_state}.",
        ),
        (
            "{obj} was next to {the_spot}, {obj_state} but safe.",
            "{obj} estaba junto a {the_spot}, {obj_state} pero a salvo.",
        ),
    ],
    "friend_intro": [
        (
            "{Hero} had a friend {friend_named} {Friend}.",
            "{Hero} tenía {friend_amigo} {friend_named} {Friend}.",
        ),
        (
            "{Hero}'s best friend was {friend_a} {friend_named} {Friend}.",
            "{el_mejor_amigo} de {Hero} era {friend_a} {friend_named} {Friend}.",
        ),
        (
            "One day {Hero} met {friend_a} {friend_named} {Friend} at {the_place}.",
            "Un día {Hero} conoció a {friend_a} {friend_named} {Friend} en {the_place}.",
        ),
    ],
    "play": [
        ("They played hide and seek behind {any_spot}.", "Jugaron al escondite detrás de {any_spot}."),
        ("{Friend} showed {Hero} {a_thing}.", "{Friend} le enseñó {a_thing} a {Hero}."),
        (
            "They pretended to be {animals} and ran in circles.",
            "Jugaron a ser {animals} y corrieron en círculos.",
        ),
        (
            "{Hero} and {Friend} played with {things} all day.",
            "{Hero} y {Friend} jugaron con {things} todo el día.",
        ),
        ("They ran around {the_place} and laughed.", "Corrieron por {the_place} y se rieron."),
        ("They built a big tower with {things}.", "Construyeron una torre grande con {things}."),
        ("{Hero} and {Friend} drew pictures of {animals}.", "{Hero} y {Friend} dibujaron {animals}."),
        (
            "They shared {foods} and told funny stories.",
            "Compartieron {foods} y contaron historias divertidas.",
        ),
        (
            "The two friends were {both_feel}.",
            "Los dos amigos estaban {both_feel}.".replace("Los dos amigos", "{los_dos}"),
        ),
    ],
    "quarrel": [
        ("But then they both wanted {the_obj}.", "Pero entonces los dos querían {the_obj}."),
        (
            '"It is mine!" said {Hero}. "No, it is mine!" said {Friend}.',
            "«¡Es mí{obj_o_a}!», dijo {Hero}. «¡No, es mí{obj_o_a}!», dijo {Friend}.",
        ),
        (
            "{Friend} took {the_obj} and {Hero} felt {feel}.",
            "{Friend} se llevó {the_obj} y {Hero} se sintió {feel}.",
        ),
        (
            "They pulled and pulled, and {obj} was {obj_state}.",
            "Tiraron y tiraron, y {obj} quedó {obj_state}.",
        ),
    ],
    "sad": [
        (
            "{Hero} sat alone under a tree. {He} was {feel}.",
            "{Hero} se sentó sol{o_a} debajo de un árbol. Estaba {feel}.",
        ),
        ("{Friend} went home, and {Hero} felt {feel}.", "{Friend} se fue a casa, y {Hero} se sintió {feel}."),
        ("Nobody wanted to play anymore.", "Nadie quería jugar más."),
    ],
    "apology": [
        (
            '{Hero} went to {Friend} and said, "I am sorry. Let us share."',
            "{Hero} fue a ver a {Friend} y le dijo: «Lo siento. Vamos a compartir».",
        ),
        (
            '"I am sorry too," said {Friend} with a smile.',
            "«Yo también lo siento», dijo {Friend} con una sonrisa.",
        ),
        (
            '{Friend} gave {the_obj} back and said, "You can play with it first."',
            "{Friend} le devolvió {the_obj} y dijo: «Puedes jugar tú primero».",
        ),
    ],
    "share": [
        ("From then on, they took turns with {the_obj}.", "Desde entonces, se turnaron con {the_obj}."),
        (
            "They played together again and were {both_feel}.",
            "Jugaron juntos otra vez y estaban {both_feel}.".replace("juntos", "junt{os_as}"),
        ),
        ("They shared {the_food} and laughed.", "Compartieron {the_food} y se rieron."),
    ],
    "plan_trip": [
        (
            '{his_parent} said, "Today we will go to {the_place}."',
            "{his_parent} dijo: «Hoy vamos a ir a {the_place}».",
        ),
        (
            "{Hero} wanted to visit {the_place}. {He} packed {a_food} and {a_thing}.",
            "{Hero} quería visitar {the_place}. Guardó {a_food} y {a_thing}.",
        ),
        (
            '"Can we go to {the_place}?" asked {Hero}. "Yes," said {Parent}.',
            "«¿Podemos ir a {the_place}?», preguntó {Hero}. «Sí», dijo {Parent}.",
        ),
    ],
    "travel": [
        (
            "They rode in a {color} car past {any_place}.",
            "Fueron en un coche {color} y pasaron junto a {any_place}.",
        ),
        ("{Hero} counted {animals} along the way.", "{Hero} contó {animals} por el camino."),
        ("They walked along the road and sang a song.", "Caminaron por el camino y cantaron una canción."),
        ("The way was long, but {Hero} was {feel}.", "El camino era largo, pero {Hero} estaba {feel}."),
        ("They crossed a bridge over a {color} river.", "Cruzaron un puente sobre un río {color}."),
        ("On the way, {Hero} saw {animals} and {things}.", "Por el camino, {Hero} vio {animals} y {things}."),
    ],
    "at_place": [
        (
            "Near {any_spot}, {Hero} found {things} and counted them.",
            "Cerca de {any_spot}, {Hero} encontró {things} y los contó.",
        ),
        ("{Hero} watched {animals} playing in the sun.", "{Hero} miró {animals} jugando al sol."),
        ("{Hero} sat on a bench and ate {the_food}.", "{Hero} se sentó en un banco y se comió {the_food}."),
        ("At {the_place}, {Hero} saw {a_animal}.", "En {the_place}, {Hero} vio {a_animal}."),
        ("{Hero} found {a_thing} near {any_spot}.", "{Hero} encontró {a_thing} cerca de {any_spot}."),
        ("There were {animals} everywhere.", "Había {animals} por todas partes."),
        ("{Hero} ate {a_food} and drank cold water.", "{Hero} comió {a_food} y bebió agua fría."),
        (
            "{Hero} met {a_person}, who gave {him} {foods2}.",
            "{Hero} conoció a {a_person}, que le dio {foods2}.",
        ),
        (
            "The sky was {color}, and the air smelled of {foods}.",
            "El cielo era {color}, y el aire olía a {foods}.",
        ),
        ("{Hero} climbed a hill and looked at {the_place}.", "{Hero} subió una colina y miró {the_place}."),
    ],
    "go_home": [
        ("When the sun went down, they went home.", "Cuando se puso el sol, volvieron a casa."),
        (
            "In the evening, {Hero} was tired and went to bed.",
            "Por la noche, {Hero} estaba cansad{o_a} y se fue a la cama.",
        ),
        (
            "At home, {Hero} told {his_parent} about the day.",
            "En casa, {Hero} le contó el día a {his_parent}.",
        ),
    ],
    "want_skill": [
        ("{Hero} wanted to learn to {skill}.", "{Hero} quería aprender a {skill}."),
        (
            "{Hero} saw {Friend} {skill} and wanted to {skill} too.",
            "{Hero} vio a {Friend} {skill} y también quiso {skill}.",
        ),
        (
            '"I want to {skill}," {Hero} said to {his_parent}.',
            "«Quiero {skill}», le dijo {Hero} a {his_parent}.",
        ),
    ],
    "fail": [
        (
            "{Hero} dropped {a_thing} and everybody laughed. {He} felt {feel}.",
            "A {Hero} se le cayó {a_thing} y todos se rieron. Se sintió {feel}.",
        ),
        (
            "{He} tried, but it was too hard. {He} fell down.",
            "Lo intentó, pero era demasiado difícil. Se cayó.",
        ),
        (
            "The first time, {Hero} could not do it. {He} felt {feel}.",
            "La primera vez, {Hero} no pudo hacerlo. Se sintió {feel}.",
        ),
        (
            "{Hero} tried again and again, but it did not work.",
            "{Hero} lo intentó una y otra vez, pero no funcionó.",
        ),
    ],
    "encourage": [
        (
            '{Parent} said, "Do not give up. Try one more time."',
            "{Parent} dijo: «No te rindas. Inténtalo una vez más».",
        ),
        ('{Friend} said, "You can do it! I will help you."', "{Friend} dijo: «¡Tú puedes! Yo te ayudo»."),
        (
            '{a_person} smiled and said, "Go slowly, little one."',
            "{a_person} sonrió y dijo: «Despacio, pequeñ{o_a}».",
        ),
    ],
    "practice": [
        ("{Hero} practiced every day after school.", "{Hero} practicó todos los días después de la escuela."),
        (
            "Every morning, {Hero} went to {the_place} to practice.",
            "Cada mañana, {Hero} iba a {the_place} a practicar.",
        ),
        (
            "{He} practiced with {Friend} until the sun went down.",
            "Practicó con {Friend} hasta que se puso el sol.",
        ),
    ],
    "success": [
        (
            "At last, {Hero} could {skill}! {He} was so {feel}.",
            "¡Por fin, {Hero} pudo {skill}! Estaba muy {feel}.",
        ),
        ("One day, {Hero} did it. Everyone clapped.", "Un día, {Hero} lo consiguió. Todos aplaudieron."),
        ('"I did it!" shouted {Hero}.', "«¡Lo conseguí!», gritó {Hero}."),
    ],
    "hear_sound": [
        ("{Hero} heard a small sound near {the_spot}.", "{Hero} oyó un ruido pequeño cerca de {the_spot}."),
        (
            "While walking in {the_place}, {Hero} heard someone crying.",
            "Mientras caminaba por {the_place}, {Hero} oyó a alguien llorar.",
        ),
    ],
    "trouble": [
        (
            "It was {a_animal}. It was stuck in {the_spot}.",
            "Era {a_animal}. Estaba atrapad{animal_o_a} en {the_spot}.",
        ),
        ("{a_animal} was cold and {animal_feel}.", "{a_animal} tenía frío y estaba {animal_feel}."),
        ("{a_animal} could not find its home.", "{a_animal} no podía encontrar su casa."),
    ],
    "help": [
        (
            "{Hero} ran to get {the_person}, who knew what to do.",
            "{Hero} corrió a buscar a {the_person}, que sabía qué hacer.",
        ),
        (
            "Together with {his_parent}, {Hero} built a little house for {the_animal}.",
            "Con {his_parent}, {Hero} construyó una casita para {the_animal}.",
        ),
        ("{Hero} helped {the_animal} carefully.", "{Hero} ayudó a {the_animal} con cuidado."),
        ("{Hero} gave {the_animal} some {foods}.", "{Hero} le dio {foods} a {the_animal}."),
        (
            "{Hero} wrapped {the_animal} in a warm blanket.",
            "{Hero} envolvió a {the_animal} en una manta caliente.",
        ),
        (
            "{Hero} called {Friend}, and together they helped {the_animal}.",
            "{Hero} llamó a {Friend}, y junt{os_as} ayudaron a {the_animal}.",
        ),
    ],
    "thanks": [
        (
            '{the_animal} said, "Thank you, {Hero}! You are very {trait}."',
            "{the_animal} dijo: «¡Gracias, {Hero}! Eres muy {trait}».",
        ),
        (
            "{the_animal} was {animal_feel} and licked {Hero}'s hand.",
            "{the_animal} estaba {animal_feel} y le lamió la mano a {Hero}.",
        ),
        (
            "From that day on, {the_animal} and {Hero} were friends.",
            "Desde ese día, {the_animal} y {Hero} fueron amig{ah_os_as}.",
        ),
    ],
    "chat": [
        (
            '"Do you like {foods}?" asked {Friend}. "Yes, very much!" said {Hero}.',
            "«¿Te gustan {the_foods}?», preguntó {Friend}. «¡Sí, mucho!», dijo {Hero}.",
        ),
        (
            '"What is your favorite color?" asked {Hero}. "I like {color}," said {Friend}.',
            "«¿Cuál es tu color favorito?», preguntó {Hero}. «Me gusta el {color}», dijo {Friend}.",
        ),
        (
            '"Look at {the_animal}!" said {Friend}. "It is so {animal_look}!"',
            "«¡Mira {the_animal}!», dijo {Friend}. «¡Es muy {animal_look}!»",
        ),
        (
            '"Can I play too?" asked {Friend}. "Of course," said {Hero}.',
            "«¿Puedo jugar yo también?», preguntó {Friend}. «Claro que sí», dijo {Hero}.",
        ),
        (
            '"I am {feel}," said {Hero}. "Me too," said {Friend}.',
            "«Estoy {feel}», dijo {Hero}. «Yo también», dijo {Friend}.",
        ),
        (
            '"Where are we going?" asked {Hero}. "To {the_place}," said {Parent}.',
            "«¿Adónde vamos?», preguntó {Hero}. «A {the_place}», dijo {Parent}.",
        ),
        (
            '"Let us make {a_food} for everyone," said {Hero}.',
            "«Vamos a hacer {a_food} para todos», dijo {Hero}.",
        ),
        (
            '{Friend} whispered, "I have a secret. I found {a_thing} near {any_spot}."',
            "{Friend} susurró: «Tengo un secreto. Encontré {a_thing} cerca de {any_spot}».",
        ),
    ],
    "garden": [
        ("{Hero} planted {foods} in the garden.", "{Hero} plantó {foods} en el jardín."),
        (
            "Every day, {Hero} watered the little plants.",
            "Todos los días, {Hero} regaba las plantas pequeñas.",
        ),
        ("The sun was warm and the plants grew tall.", "El sol calentaba y las plantas crecieron mucho."),
        (
            "One morning, {Hero} saw {animals} eating the leaves.",
            "Una mañana, {Hero} vio {animals} comiendo las hojas.",
        ),
        (
            "{Hero} picked {foods2} and put them in a basket.",
            "{Hero} recogió {foods2} y los puso en una cesta.",
        ),
        ("{Hero} gave the best {food_pl} to {the_person}.", "{Hero} le dio {the_best_food} a {the_person}."),
    ],
    "bedtime": [
        (
            "That night, {his_parent} read {him} a story about {animals}.",
            "Esa noche, {his_parent} le leyó un cuento sobre {animals}.",
        ),
        ("{Hero} looked at the stars and made a wish.", "{Hero} miró las estrellas y pidió un deseo."),
        (
            '"Good night," said {Parent}, and turned off the lamp.',
            "«Buenas noches», dijo {Parent}, y apagó la lámpara.",
        ),
        ("{Hero} dreamed of {a_place_full_of_things}.", "{Hero} soñó con {a_place_full_of_things}."),
    ],
    "weather_event": [
        (
            "Suddenly, dark clouds came and it began to rain.",
            "De repente, llegaron nubes oscuras y empezó a llover.",
        ),
        ("That night, it snowed and everything was white.", "Esa noche nevó y todo estaba blanco."),
        (
            "A big storm came, and {Hero} stayed inside.",
            "Llegó una gran tormenta, y {Hero} se quedó en casa.",
        ),
    ],
    "surprise": [
        (
            "It was {Friend}'s birthday, so {Hero} made {a_food}.",
            "Era el cumpleaños de {Friend}, así que {Hero} hizo {a_food}.",
        ),
        (
            "{Hero} wrapped {a_thing} as a present for {Friend}.",
            "{Hero} envolvió {a_thing} como regalo para {Friend}.",
        ),
        (
            "{Hero} and {his_parent} hid behind {the_spot} and waited.",
            "{Hero} y {his_parent} se escondieron detrás de {the_spot} y esperaron.",
        ),
        (
            'When {Friend} came in, everyone shouted, "Surprise!"',
            "Cuando {Friend} entró, todos gritaron: «¡Sorpresa!»",
        ),
        (
            '{Friend} was {ffeel} and said, "This is the best day ever!"',
            "{Friend} estaba {ffeel} y dijo: «¡Es el mejor día de mi vida!»",
        ),
    ],
    "ending": [
        ("{Hero} promised to come back to {the_place} soon.", "{Hero} prometió volver pronto a {the_place}."),
        (
            "It had been a long day, and {Hero} was {feel}.",
            "Había sido un día largo, y {Hero} estaba {feel}.",
        ),
        ("{Hero} was {feel} and smiled.", "{Hero} estaba {feel} y sonrió."),
        (
            "That night, {Hero} slept with {his_obj} next to {him}.",
            "Esa noche, {Hero} durmió con {his_obj} a su lado.",
        ),
        ("It was a wonderful day.", "Fue un día maravilloso."),
        (
            '{Hero} hugged {his_parent} and said, "I love you."',
            "{Hero} abrazó a {his_parent} y le dijo: «Te quiero».",
        ),
        ("And they lived happily ever after.", "Y vivieron felices para siempre."),
    ],
    "moral": [("{moral}", "{moral}")],
    "next_episode": [
        ("The next day, {Hero} woke up {feel}.", "Al día siguiente, {Hero} se despertó {feel}."),
        ("A few days later, something new happened.", "Unos días después, pasó algo nuevo."),
        ("Later that week, {Hero} went out again.", "Más tarde esa semana, {Hero} salió otra vez."),
        ("After that, {Hero} had another adventure.", "Después de eso, {Hero} tuvo otra aventura."),
    ],
}

CONNECTORS = [
    ("Then,", "Entonces,"),
    ("After a while,", "Al cabo de un rato,"),
    ("Suddenly,", "De repente,"),
    ("Later,", "Más tarde,"),
    ("Soon,", "Pronto,"),
    ("That afternoon,", "Esa tarde,"),
    ("In the end,", "Al final,"),
    ("For a moment,", "Por un momento,"),
    ("Just then,", "Justo entonces,"),
    ("Luckily,", "Por suerte,"),
    ("Meanwhile,", "Mientras tanto,"),
    ("Slowly,", "Poco a poco,"),
]

# story shapes: stage names; a "*" suffix repeats the stage 1..3 times, "?" makes it optional
SHAPES: dict[str, list[str]] = {
    "lost_object": ["opening", "has_obj", "lose_obj", "search*", "found_obj", "ending", "moral?"],
    "trip": ["opening", "plan_trip", "travel*", "at_place*", "chat?", "go_home", "ending?"],
    "quarrel": ["opening", "friend_intro", "chat?", "play*", "quarrel", "sad", "apology", "share", "moral"],
    "learning": ["opening", "want_skill", "fail", "encourage", "practice", "fail?", "success", "moral?"],
    "rescue": ["opening", "hear_sound", "trouble", "help*", "thanks", "ending?", "moral?"],
    "surprise": ["opening", "friend_intro", "weather_event?", "surprise*", "play", "ending"],
    "garden": ["opening", "garden*", "chat?", "garden", "ending", "moral?"],
    "bedtime": ["opening", "at_place", "chat", "go_home", "bedtime*"],
    "visit": ["opening", "friend_intro", "chat*", "play*", "chat?", "ending"],
    "long_day": [
        "opening",
        "has_obj",
        "plan_trip",
        "at_place*",
        "hear_sound",
        "trouble",
        "help",
        "thanks",
        "go_home",
        "ending",
    ],
}


def generate_story(rng: random.Random) -> tuple[str, str]:
    """One parallel story: (English text, Spanish text), paragraphs separated by newlines."""
    story = Story(rng)
    stages: list[str] = []
    for episode in range(rng.choice([1, 2, 2, 3])):
        shape = SHAPES[rng.choice(sorted(SHAPES))]
        stages += shape if episode == 0 else ["next_episode"] + shape[1:]
    en_sents: list[str] = []
    es_sents: list[str] = []
    for stage in stages:
        repeat = 1
        if stage.endswith("*"):
            stage, repeat = stage[:-1], rng.randint(1, 3)
        elif stage.endswith("?"):
            stage, repeat = stage[:-1], rng.randint(0, 1)
        options = list(STAGES[stage])
        rng.shuffle(options)
        for template in options[:repeat]:
            en, es = render(story, template)
            starts_with_name = all(t.startswith(("{Hero} ", "{Friend} ")) for t in template)
            if starts_with_name and stage != "opening" and rng.random() < 0.25:
                c_en, c_es = rng.choice(CONNECTORS)
                en, es = f"{c_en} {en}", f"{c_es} {es}"
            en_sents.append(en)
            es_sents.append(es)
    # paragraph breaks every few sentences, at the same places in both languages
    en_paras, es_paras, i = [], [], 0
    while i < len(en_sents):
        n = rng.randint(2, 4)
        en_paras.append(" ".join(en_sents[i : i + n]))
        es_paras.append(" ".join(es_sents[i : i + n]))
        i += n
    return "\n".join(en_paras), _fix_spanish("\n".join(es_paras))
