"""Parallel English/Spanish lexicon for the built-in bilingual story corpus.

Each entry is written once with both languages and the Spanish grammatical gender, so the
story engine can render any noun phrase with correct article / adjective agreement.
Entries are compact strings (``en_sg/en_pl|es_sg/es_pl|gender``; plurals optional) parsed
at import time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Noun:
    en: str
    en_pl: str
    es: str
    es_pl: str
    gender: str  # "m" | "f"


@dataclass(frozen=True)
class Adjective:
    en: str
    es_m: str
    es_f: str
    es_m_pl: str
    es_f_pl: str

    def es(self, gender: str, plural: bool = False) -> str:
        if plural:
            return self.es_f_pl if gender == "f" else self.es_m_pl
        return self.es_f if gender == "f" else self.es_m


def _es_plural(word: str) -> str:
    accented = {"á": "a", "é": "e", "í": "i", "ó": "o", "ú": "u"}
    if word[-1] in "aeiouáéó":
        return word + "s"
    if word.endswith("z"):
        return word[:-1] + "ces"
    if len(word) >= 2 and word[-2] in accented and word[-1] in "ns":
        return word[:-2] + accented[word[-2]] + word[-1] + "es"
    return word + "es"


def _en_plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _nouns(table: str) -> list[Noun]:
    out = []
    for line in table.strip().splitlines():
        en, es, gender = (part.strip() for part in line.split("|"))
        en_sg, _, en_pl = en.partition("/")
        es_sg, _, es_pl = es.partition("/")
        out.append(Noun(en_sg, en_pl or _en_plural(en_sg), es_sg, es_pl or _es_plural(es_sg), gender))
    return out


def _adjectives(table: str) -> list[Adjective]:
    out = []
    for line in table.strip().splitlines():
        en, es = (part.strip() for part in line.split("|"))
        if "/" in es:  # explicit masculine/feminine
            m, f = es.split("/")
        elif es.endswith("o"):
            m, f = es, es[:-1] + "a"
        elif es.endswith("ón"):
            m, f = es, es[:-2] + "ona"
        else:
            m = f = es
        out.append(Adjective(en, m, f, _es_plural(m), _es_plural(f)))
    return out


# Things a character can own, lose, find, carry or share.
OBJECTS = _nouns("""
ball|pelota|f
kite|cometa|f
doll|muñeca|f
teddy bear|oso de peluche/osos de peluche|m
red wagon|carrito rojo/carritos rojos|m
hat|sombrero|m
scarf|bufanda|f
shoe|zapato|m
boot|bota|f
book|libro|m
drum|tambor|m
flute|flauta|f
guitar|guitarra|f
crayon|crayón|m
pencil|lápiz/lápices|m
paintbrush/paintbrushes|pincel|m
box|caja|f
basket|cesta|f
blanket|manta|f
pillow|almohada|f
cup|taza|f
spoon|cuchara|f
bowl|cuenco|m
key|llave|f
map|mapa|m
lamp|lámpara|f
clock|reloj/relojes|m
umbrella|paraguas/paraguas|m
bicycle|bicicleta|f
boat|barco|m
toy train|tren de juguete/trenes de juguete|m
toy car|coche de juguete/coches de juguete|m
puzzle|rompecabezas/rompecabezas|m
balloon|globo|m
ribbon|cinta|f
shell|concha|f
stone|piedra|f
feather|pluma|f
flower|flor/flores|f
leaf/leaves|hoja|f
stick|palo|m
rope|cuerda|f
bell|campana|f
candle|vela|f
coat|abrigo|m
sock|calcetín|m
mirror|espejo|m
letter|carta|f
picture|dibujo|m
necklace|collar/collares|m
ring|anillo|m
crown|corona|f
jar|frasco|m
bottle|botella|f
backpack|mochila|f
bucket|cubo|m
shovel|pala|f
net|red/redes|f
marble|canica|f
button|botón|m
whistle|silbato|m
star sticker|pegatina de estrella/pegatinas de estrella|f
hammer|martillo|m
watering can|regadera|f
lantern|farol|m
notebook|cuaderno|m
glove|guante|m
mitten|manopla|f
wand|varita|f
treasure chest|cofre|m
coin|moneda|f
toy robot|robot de juguete/robots de juguete|m
tambourine|pandereta|f
violin|violín|m
piano|piano|m
spinning top|peonza|f
telescope|telescopio|m
compass|brújula|f
acorn|bellota|f
bracelet|pulsera|f
cap|gorra|f
raincoat|impermeable|m
toothbrush/toothbrushes|cepillo de dientes/cepillos de dientes|m
sandal|sandalia|f
wheel|rueda|f
postcard|postal|f
bag|bolsa|f
""")

ANIMALS = _nouns("""
dog|perro|m
cat|gato|m
rabbit|conejo|m
bird|pájaro|m
duck|pato|m
frog|rana|f
fox/foxes|zorro|m
bear|oso|m
mouse/mice|ratón|m
owl|búho|m
turtle|tortuga|f
squirrel|ardilla|f
horse|caballo|m
cow|vaca|f
pig|cerdo|m
sheep/sheep|oveja|f
goat|cabra|f
hen|gallina|f
lion|león|m
tiger|tigre|m
elephant|elefante|m
monkey|mono|m
giraffe|jirafa|f
bee|abeja|f
butterfly/butterflies|mariposa|f
fish/fish|pez/peces|m
snail|caracol/caracoles|m
deer/deer|ciervo|m
wolf/wolves|lobo|m
penguin|pingüino|m
whale|ballena|f
dolphin|delfín|m
ant|hormiga|f
spider|araña|f
hedgehog|erizo|m
puppy/puppies|cachorro|m
kitten|gatito|m
donkey|burro|m
parrot|loro|m
crab|cangrejo|m
camel|camello|m
zebra|cebra|f
kangaroo|canguro|m
seal|foca|f
swan|cisne|m
goose/geese|oca|f
bat|murciélago|m
beaver|castor|m
koala|koala|m
panda|panda|m
rooster|gallo|m
lamb|cordero|m
mole|topo|m
ladybug|mariquita|f
worm|gusano|m
octopus/octopuses|pulpo|m
seagull|gaviota|f
badger|tejón|m
raccoon|mapache|m
flamingo|flamenco|m
""")

PLACES = _nouns("""
park|parque|m
forest|bosque|m
garden|jardín|m
beach/beaches|playa|f
river|río|m
lake|lago|m
hill|colina|f
mountain|montaña|f
farm|granja|f
school|escuela|f
library/libraries|biblioteca|f
market|mercado|m
kitchen|cocina|f
house|casa|f
meadow|pradera|f
zoo|zoológico|m
town square|plaza del pueblo/plazas del pueblo|f
bakery/bakeries|panadería|f
field|campo|m
pond|estanque|m
cave|cueva|f
island|isla|f
bridge|puente|m
street|calle|f
playground|patio de recreo/patios de recreo|m
castle|castillo|m
harbor|puerto|m
orchard|huerto|m
station|estación|f
museum|museo|m
village|aldea|f
valley/valleys|valle|m
desert|desierto|m
jungle|selva|f
lighthouse|faro|m
mill|molino|m
barn|granero|m
attic|desván|m
tower|torre|f
shop|tienda|f
hospital|hospital|m
theater|teatro|m
circus/circuses|circo|m
fair|feria|f
""")

# Places inside/around a house where something can hide.
SPOTS = _nouns("""
bed|cama|f
table|mesa|f
chair|silla|f
sofa|sofá|m
tree|árbol|m
bush/bushes|arbusto|m
door|puerta|f
window|ventana|f
fence|valla|f
rock|roca|f
wall|pared/paredes|f
shelf/shelves|estante|m
stairs/stairs|escalera|f
car|coche|m
tent|tienda de campaña/tiendas de campaña|f
""")

FOODS = _nouns("""
apple|manzana|f
cake|pastel|m
cookie|galleta|f
bread|pan/panes|m
soup|sopa|f
banana|plátano|m
orange|naranja|f
strawberry/strawberries|fresa|f
pear|pera|f
grape|uva|f
sandwich/sandwiches|bocadillo|m
pie|tarta|f
carrot|zanahoria|f
tomato/tomatoes|tomate|m
egg|huevo|m
cheese|queso|m
candy/candies|caramelo|m
ice cream|helado|m
lemon|limón|m
cherry/cherries|cereza|f
peach/peaches|melocotón|m
pancake|tortita|f
plum|ciruela|f
melon|melón|m
watermelon|sandía|f
potato/potatoes|patata|f
nut|nuez/nueces|f
muffin|magdalena|f
pumpkin|calabaza|f
chocolate bar|tableta de chocolate/tabletas de chocolate|f
olive|aceituna|f
blueberry/blueberries|arándano|m
""")

PEOPLE = _nouns("""
grandmother|abuela|f
grandfather|abuelo|m
teacher|maestra|f
baker|panadera|f
farmer|granjero|m
fisherman/fishermen|pescador/pescadores|m
neighbor|vecina|f
doctor|doctora|f
mail carrier|cartero|m
gardener|jardinero|m
king|rey/reyes|m
queen|reina|f
old woman/old women|anciana|f
old man/old men|anciano|m
sailor|marinero|m
""")

COLORS = _adjectives("""
red|rojo
blue|azul
green|verde
yellow|amarillo
white|blanco
black|negro
pink|rosa/rosa
purple|morado
orange|naranja/naranja
brown|marrón/marrón
gray|gris
golden|dorado
silver|plateado
""")

SIZES_AND_LOOKS = _adjectives("""
big|grande
small|pequeño
tiny|diminuto
old|viejo
new|nuevo
shiny|brillante
soft|suave
round|redondo
long|largo
heavy|pesado
light|ligero
pretty|bonito
strange|extraño
special|especial
funny|gracioso
beautiful|precioso
fluffy|esponjoso
striped|rayado
warm|cálido
magic|mágico
bright|luminoso
dark|oscuro
sparkly|reluciente
bumpy|rugoso
smooth|liso
spotted|moteado
curly|rizado
tall|alto
huge|enorme
noisy|ruidoso
colorful|colorido
""")

# Predicate adjectives for characters ("Ana was happy" / "Ana estaba contenta").
FEELINGS = _adjectives("""
happy|contento
glad|alegre
sad|triste
worried|preocupado
scared|asustado
tired|cansado
excited|emocionado
proud|orgulloso
surprised|sorprendido
angry|enfadado
calm|tranquilo
hungry|hambriento
curious|curioso
lonely|solo
nervous|nervioso
grateful|agradecido
sleepy|dormido/dormida
bored|aburrido
confused|confundido
relieved|aliviado
busy|ocupado
amazed|asombrado
jealous|celoso
upset|disgustado
""")

# Character traits ("a kind girl" / "una niña amable").
TRAITS = _adjectives("""
kind|amable
brave|valiente
clever|listo
shy|tímido
curious|curioso
cheerful|alegre
gentle|dulce
playful|juguetón
careful|cuidadoso
quiet|callado
funny|divertido
strong|fuerte
patient|paciente
generous|generoso
lazy|perezoso
polite|educado
""")

# States of an object ("the kite was wet" / "la cometa estaba mojada").
STATES = _adjectives("""
wet|mojado
dirty|sucio
broken|roto
stuck|atascado
lost|perdido
muddy|lleno de barro/llena de barro
cold|frío
hidden|escondido
clean|limpio
torn|roto
""")

WEATHER = [
    ("sunny", "soleado", "soleada"),
    ("rainy", "lluvioso", "lluviosa"),
    ("windy", "ventoso", "ventosa"),
    ("cold", "frío", "fría"),
    ("warm", "cálido", "cálida"),
    ("snowy", "nevado", "nevada"),
    ("cloudy", "nublado", "nublada"),
    ("quiet", "tranquilo", "tranquila"),
]

# (English, Spanish) time-of-day nouns: (en, es, gender)
TIMES = [
    ("morning", "mañana", "f"),
    ("afternoon", "tarde", "f"),
    ("evening", "noche", "f"),
    ("day", "día", "m"),
    ("spring day", "día de primavera", "m"),
    ("summer day", "día de verano", "m"),
    ("autumn morning", "mañana de otoño", "f"),
    ("winter morning", "mañana de invierno", "f"),
]

# Given names with natural gender; used unchanged in both languages.
NAMES_F = """Ana Lucía Sofía Mia Emma Lily Sara Clara Elena Marta Julia Paula Nora Alba Irene Carla
Olivia Lola Rosa Inés Laura Daniela Valeria Chloe Zoe Ella Ruby Luna Maya Isabel Teresa Eva Noa
Carmen Gloria Amy Kate Lucy Molly Hanna Ivy Rita Vera Greta Aitana Blanca Celia Diana Esther Frida
Gemma Helena Iris Jimena Lara Martina Nerea Olga Pilar Rocío Silvia Tania Úrsula Violeta Ximena Yolanda
Zara Abril Bea Candela""".split()
NAMES_M = """Tom Leo Max Hugo Pablo Mateo Lucas Daniel Martín Diego Bruno Iván Adrián Marco Nico Sam Ben
Jack Oliver Theo Felix Samuel David Jorge Andrés Carlos Luis Pedro Tim Oscar Álvaro Mario Simón
Rafael Gabriel Arturo Joel Izan Eric Dylan Noah Elías Gonzalo Alonso Bernardo César Darío Emilio
Fermín Gael Héctor Ignacio Julián Kevin Lorenzo Manuel Nicolás Omar Rodrigo Santiago Tomás Unai Víctor
Xavier Yago Rubén Alex""".split()

# Skills a character can learn: (English gerund phrase, Spanish infinitive phrase)
SKILLS = [
    ("ride a bike", "montar en bicicleta"),
    ("swim", "nadar"),
    ("bake bread", "hacer pan"),
    ("read a big book", "leer un libro grande"),
    ("paint a picture", "pintar un cuadro"),
    ("sing a song", "cantar una canción"),
    ("climb a tree", "trepar a un árbol"),
    ("tie a knot", "hacer un nudo"),
    ("fly a kite", "volar una cometa"),
    ("play the drum", "tocar el tambor"),
    ("jump rope", "saltar a la comba"),
    ("whistle", "silbar"),
    ("count to one hundred", "contar hasta cien"),
    ("plant seeds", "plantar semillas"),
    ("build a sandcastle", "construir un castillo de arena"),
    ("catch a ball", "atrapar una pelota"),
    ("write a letter", "escribir una carta"),
    ("dance", "bailar"),
]

# Morals: (English, Spanish)
MORALS = [
    ("Sharing makes everyone happy.", "Compartir hace felices a todos."),
    ("Friends help each other.", "Los amigos se ayudan unos a otros."),
    ("If you keep trying, you can do hard things.", "Si sigues intentándolo, puedes hacer cosas difíciles."),
    ("It is good to say sorry.", "Es bueno pedir perdón."),
    ("Being kind is the best thing of all.", "Ser amable es lo mejor de todo."),
    ("It is important to be careful.", "Es importante tener cuidado."),
    ("Even small friends can be a big help.", "Incluso los amigos pequeños pueden ser de gran ayuda."),
    ("Home is the warmest place.", "El hogar es el lugar más cálido."),
    ("Listening to others is wise.", "Escuchar a los demás es sabio."),
    ("A good friend is a great treasure.", "Un buen amigo es un gran tesoro."),
]
