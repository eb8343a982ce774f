"""A seeded simulator of online-shopping sessions that writes the OPeRA Hub parquet layout at real scale.

The real OPeRA rows cannot ship with the service, so the bundled benchmark is simulated in the same
format and, as far as the dataset card and the real sample rows tell, the same shape:

- pages: simplified HTML of search results, product pages (option lists, long reviews, recommendation
  rails), carts and checkouts, 2.8K-626K characters with a median near 100K, as the card says;
- semantic ids in the real style (product names and prices inside ids: ``active_item_list.<title>.delete``,
  ``product_options.color.button_list.3_99_3_99_cedar_wood``), with the targets of one page spread over it
  (the cart side bar and the pagination come last in page order, as on the real site);
- click types that the id alone does not decide where real annotations do not either (``go_to_cart`` is
  ``other`` or ``nav_bar``; a recommendation is ``product_link`` or ``other``);
- purchase clicks wherever the shopper decides (an add-to-cart can open a session); a buying session ends
  on a purchase click, any other on ``terminate`` (the real test split: 50 + 40 of 90 sessions);
- rationales from a small generative grammar (hundreds of distinct sentences), personas whose
  demographics agree with each other, and survey answers that drive the behaviour.

Every session draws from its own ``random.Random`` seeded by (seed, session index), so any subset of the
sessions can be regenerated exactly, and the same seed writes byte-identical parquet files. ``Shape``
sets the dataset's size: the default is the real filtered config's; tests use small shapes.
"""

from __future__ import annotations

import json
import math
import random
import re
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html import escape
from itertools import chain, count
from pathlib import Path
from statistics import mean, median
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from datasets.opera.loader import OperaData

SIMULATOR_VERSION = "2"
DEFAULT_SEED = 2025


@dataclass(frozen=True)
class Shape:
    """The size of a simulated dataset (defaults: the real filtered config's counts)."""

    users: int = 51
    train_sessions: int = 437
    test_sessions: int = 90
    train_actions: int = 4864
    test_actions: int = 992


DEFAULT_SHAPE = Shape()
# Page lengths: a log-normal per page type, clipped to the card's range (2.8K-626K, median about 100K).
MIN_PAGE_CHARS, MAX_PAGE_CHARS = 2_800, 626_000
PAGE_LENGTH = {"search": (125_000, 0.6), "product": (120_000, 0.65), "home": (70_000, 0.5), "cart": (40_000, 0.7),
               "checkout": (9_000, 0.6)}
PURCHASE_SHARE = 50 / 90  # the real test split's sessions with a purchase
RATIONALE_SHARE = 0.12

LIKERT = ("Strongly disagree", "Somewhat disagree", "Neither agree or disagree", "Somewhat agree", "Strongly agree")
STATEMENTS = {
    "holidays": "I tend to shop more during holidays.",
    "ads": "Online Ads attract my attention and are a good source of information.",
    "research": "I usually do a lot research (e.g. reading online reviews) before making purchase.",
    "delivery": "I prioritize delivery speed and delivery fee of the product.",
    "quality": "Getting high-quality online products is very important for me.",
    "premium": "The more expensive online product brands are usually my choice.",
    "overwhelmed": "The more I learn about online products, the harder it seems to choose the best.",
    "quick": "I shop quickly for online products, buying the first product or brand I find that seems good enough.",
    "loyal": "Once I find a brand I like, I stick with it.",
    "novelty": "I would buy a new or different brand of product just to see what it is like.",
    "fun": "I enjoy shopping for online products just for the fun of it.",
    "value": "I look carefully to find the best value for money when shopping online.",
}
CATEGORIES: dict[str, dict[str, Any]] = {
    "bike accessories": {"nouns": ["bike tail light", "bike frame bag", "bike u lock", "handlebar tape", "saddle bag", "bike phone holder"],
                         "brands": ["Lumiere Co", "Kryptonite", "Fizik", "Lamicall", "Ndakter", "Specialized"],
                         "features": ["waterproof", "quick release", "heavy duty anti theft", "usb rechargeable", "with rain cover", "gravel and road cycling"],
                         "options": {"color": ["black", "green", "mint green", "white", "red"], "size": ["small", "large", "3mm", "2.5mm"]}},
    "air fresheners": {"nouns": ["car air freshener", "scented ceramic diffuser", "closet air freshener", "reed diffuser set"],
                       "brands": ["Airkeep", "Glade", "Febreze", "Yankee Candle"],
                       "features": ["handmade", "long lasting", "for drawers and closets", "essential oil", "gifts for men women"],
                       "options": {"color": ["ocean mist sea salt", "cedar wood", "clean linen", "white jasmine", "cashmere vanilla", "lavender"],
                                   "style": ["tassel ceramic", "square ceramic", "hanging"]}},
    "kitchen": {"nouns": ["nonstick frying pan", "chef knife", "pour over coffee maker", "glass food containers", "cast iron skillet"],
                "brands": ["Cuisinart", "Henckels", "Hario", "Pyrex", "Lodge"],
                "features": ["dishwasher safe", "oven safe", "pfoa free", "with lids", "professional"],
                "options": {"size": ["8 inch", "10 inch", "12 inch", "3 piece set"], "color": ["black", "silver", "red"]}},
    "skincare": {"nouns": ["hydrating face moisturizer", "vitamin c serum", "mineral sunscreen spf 50", "gentle foaming cleanser"],
                 "brands": ["CeraVe", "La Roche Posay", "Neutrogena", "The Ordinary"],
                 "features": ["fragrance free", "for sensitive skin", "with hyaluronic acid", "oil free", "non comedogenic"],
                 "options": {"size": ["1 fl oz", "1.7 fl oz", "3 fl oz", "8 fl oz"]}},
    "headphones": {"nouns": ["wireless earbuds", "noise cancelling headphones", "usb c microphone", "gaming headset"],
                   "brands": ["Soundcore", "Sony", "Fifine", "JBL", "Bose"],
                   "features": ["bluetooth 5 3", "40h playtime", "with charging case", "ipx7 waterproof", "hi res audio"],
                   "options": {"color": ["black", "white", "navy blue", "sage green"], "style": ["standard", "pro", "with case"]}},
    "nail polish": {"nouns": ["gel nail polish", "quick dry top coat", "nail polish set", "cuticle oil pen"],
                    "brands": ["Essie", "OPI", "Sally Hansen", "Beetles"],
                    "features": ["long lasting", "chip resistant", "vegan", "salon quality", "6 colors"],
                    "options": {"color": ["ballet slippers", "bordeaux", "mint candy apple", "licorice", "coral"]}},
    "running": {"nouns": ["running shoes", "running socks", "hydration vest", "running belt"],
                "brands": ["Brooks", "Asics", "Saucony", "Nathan", "Hoka"],
                "features": ["breathable", "cushioned", "lightweight", "reflective", "for trail and road"],
                "options": {"size": ["7", "8", "9", "10", "11", "12"], "color": ["black white", "grey", "blue", "neon"]}},
    "home office": {"nouns": ["monitor stand", "ergonomic office chair", "desk lamp", "mechanical keyboard", "standing desk mat"],
                    "brands": ["Amazon Basics", "Sihoo", "BenQ", "Keychron", "Flexispot"],
                    "features": ["adjustable height", "with usb charging port", "lumbar support", "hot swappable", "anti fatigue"],
                    "options": {"color": ["black", "white", "walnut"], "size": ["standard", "large"]}},
}
CITIES = ["Boston", "Blacksburg", "Seattle", "Austin", "Chicago", "Pittsburgh", "San Diego", "Columbus", "Atlanta"]
AGES = ("18-24 years old", "25-34 years old", "35-44 years old", "45-54 years old", "55-64 years old", "65 years old or older")
# (description, employment status, education, the ages that fit, the incomes that fit): one occupation
# never meets an age or an income it contradicts (no retired 18-24 year old, no student on $150K).
OCCUPATIONS = [
    ("PhD student in computer science", "Student", "Graduate degree or current grad student (MA, MS, MBA, etc.)", AGES[1:3], (0, 1)),
    ("undergraduate student in biology", "Student", "Some college", AGES[:2], (0, 1)),
    ("research scientist", "Full-time employee", "Doctoral degree or current doctoral student (PhD, JD, MD, DDS etc.)", AGES[1:5], (2, 3, 4)),
    ("nurse", "Full-time employee", "Bachelor's degree", AGES[1:5], (1, 2, 3)),
    ("high school teacher", "Full-time employee", "Bachelor's degree", AGES[1:5], (1, 2, 3)),
    ("software engineer", "Full-time employee", "Graduate degree or current grad student (MA, MS, MBA, etc.)", AGES[1:4], (3, 4)),
    ("freelance designer", "Self-employed", "Bachelor's degree", AGES[1:5], (1, 2, 3)),
    ("part-time barista and student", "Part-time employee", "Some college", AGES[:2], (0, 1)),
    ("retired accountant", "Retired", "Bachelor's degree", AGES[4:], (1, 2, 3)),
]
INCOMES = ("$0-$24,999", "$25,000-$49,999", "$50,000-$74,999", "$75,000-$99,999", "$100,000-$149,999")
BIG_FIVE = ("Extraversion", "Agreeableness", "Conscientiousness", "Emotional Stability", "Intellect")
LEVELS = ("Low", "Medium", "High", "Extremely high")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


# -- rationales: a small grammar ----------------------------------------------------------------------

# Each click topic has openers and reasons; a persona adds a clause from its strongest survey answer.
_GRAMMAR: dict[str, dict[str, list[str]]] = {
    "search": {"open": ["I want to find {a_noun}", "I need {a_noun}", "Looking for {a_noun}", "I'm searching for {a_noun}",
                        "Let me look up {a_noun}", "Time to find {a_noun}"],
               "why": ["that fits what I need", "for my {use}", "since my old one broke", "before the weekend",
                       "to replace the one I have", "as a gift for a friend", "that is not too expensive"]},
    "product_link": {"open": ["This {noun} looks promising", "I want to see the details of this {noun}", "Let me check this one",
                              "This listing caught my eye", "I'll open this {noun}", "I want a closer look at this one"],
                     "why": ["because the rating is high", "since the price is reasonable", "to compare it with the others",
                             "because it has many reviews", "since the photos look good", "to see the specifications"]},
    "product_option": {"open": ["I want to compare the {dim}s", "Let me check the {value} {dim}", "I prefer the {value} {dim}",
                                "Checking the price of the {value} one", "I'm switching to {value}"],
                       "why": ["to see if the price changes", "because it matches my style", "since it looks like better value",
                               "to compare it with the other options", "because that is the one I need"]},
    "review": {"open": ["I want to read the reviews", "Let me see what other buyers say", "I'll check the low ratings first",
                        "I need to see the reviews", "Checking the reviews"],
               "why": ["before I decide", "to make sure it lasts", "because quality matters to me", "to spot any problems",
                       "since the rating could be misleading"]},
    "filter": {"open": ["I only want to see", "Let me narrow the results to", "I'll filter for", "Showing just"],
               "why": ["well rated items", "items in my budget", "the brands I trust", "things that arrive quickly"]},
    "purchase": {"open": ["This is the one", "I'm going to buy it", "Good enough, I'll take it", "I'm confident about this one now",
                          "Adding it to my cart", "Time to check out"],
                 "why": ["because it's the best value I found", "since the reviews convinced me", "before the deal ends",
                         "because it has everything I need", "since I've compared enough"]},
    "terminate": {"open": ["I'll stop here", "I'm leaving for now", "Nothing here convinced me", "I'll come back later"],
                  "why": ["because I need to think it over", "since the prices are too high", "to do more research first",
                          "because I found nothing I like", "since I ran out of time"]},
    "quantity": {"open": ["I don't need this anymore", "I'm removing this", "I changed my mind about this item", "I want one more of these"],
                 "why": ["because it's too expensive", "since I found a better one", "to stay within my budget", "for my family"]},
    "other": {"open": ["Maybe I'll want this later", "Let me see this store", "I want the coupon", "Let me look at this",
                       "Saving this for later"],
              "why": ["just in case", "to see their other products", "since every dollar counts", "out of curiosity"]},
}
_PERSONA_CLAUSES = {
    "research": "as I always research a lot before buying", "quick": "since I don't want to spend long on this",
    "value": "because I look for the best value", "quality": "because quality matters a lot to me",
    "premium": "since I usually go for the better brands", "fun": "because I enjoy browsing",
    "delivery": "as fast delivery is important to me", "loyal": "since I stick to brands I like",
    "novelty": "because I like trying new brands", "overwhelmed": "though it's hard to choose",
}
_USES = ["daily commute", "kitchen", "home office", "weekend rides", "morning runs", "apartment", "travel"]


def rationale(rng: random.Random, topic: str, persona: "Persona", **slots: str) -> str:
    """A rationale for a step of ``topic``; a third of them are short, lower-case notes as participants type."""
    grammar = _GRAMMAR[topic]
    noun = slots.get("noun") or "item"
    fill = {"noun": noun, "a_noun": ("an " if noun[0] in "aeiou" else "a ") + noun, "dim": slots.get("dim") or "option",
            "value": slots.get("value") or "other", "use": rng.choice(_USES)}
    opener = rng.choice(grammar["open"]).format(**fill)
    if rng.random() < 0.33:
        return opener.lower().rstrip(".")
    clause = rng.choice(grammar["why"]).format(**fill)
    strongest = max(_PERSONA_CLAUSES, key=lambda k: (persona.traits[k], rng.random()))
    extra = f", {_PERSONA_CLAUSES[strongest]}" if rng.random() < 0.5 else ""
    return f"{opener} {clause}{extra}."


# -- personas -----------------------------------------------------------------------------------------


@dataclass
class Persona:
    user_id: str
    traits: dict[str, float]  # Likert answers as -2..2
    interests: list[str]
    survey: dict[str, Any]
    raw_survey: dict[str, Any]
    interview: str
    interview_processed: str


def _persona(rng: random.Random) -> Persona:
    user_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    traits = {key: float(rng.choice([-2, -1, 0, 1, 1, 2, 2])) for key in STATEMENTS}
    if traits["quick"] > 0:  # quick shoppers rarely also research a lot
        traits["research"] = min(traits["research"], float(rng.choice([-2, -1, 0])))
    job, employment, education, ages, incomes = rng.choice(OCCUPATIONS)
    age, income = rng.choice(ages), INCOMES[rng.choice(incomes)]
    city = rng.choice(CITIES)
    interests = rng.sample(sorted(CATEGORIES), 3)
    gender = rng.choice(["Female", "Male", "Non-binary"])
    living = rng.choice(["", "Live alone", "Live together with roommate", "Live together with partner", "Live together with family"])
    big_five = {name: rng.choice(LEVELS) for name in BIG_FIVE}
    mbti = "".join(rng.choice(pair) for pair in ("IE", "NS", "TF", "JP"))
    answers = {STATEMENTS[k]: LIKERT[int(v) + 2] for k, v in traits.items()}
    survey = {
        "Demographic Information": {"Gender": gender, "Age": age, "City": city, "Education level": education,
                                    "Living situation": living, "Yearly household income or stipend": income,
                                    "Employment status": employment},
        "Self Description": {"Two sentence description": f"I am a {job} living in {city}. In my free time I like {interests[0]} and {interests[1]}."},
        "Shopping Preference": {"Online shopping frequency": rng.choice(["Once to twice a week", "Once every couple of weeks", "A few times a month"]),
                                "Monthly online shopping spend $": str(rng.choice([50, 100, 200, 300, 500])),
                                "Amazon Prime membership": rng.choice(["Yes", "No"]),
                                "To what extent do you agree with the following statements": answers},
        "Personality": {"MBTI personality type": mbti, "Big Five Scores": big_five},
    }
    raw = {"Gender": gender, "Age": age, "Which city do you live in?": city, **answers}
    style = ("reads many reviews and compares options carefully" if traits["research"] > 0 else
             "buys the first option that looks good enough" if traits["quick"] > 0 else "balances price and quality")
    value = "always looks for discounts and coupons" if traits["value"] > 0 else "does not mind paying more for convenience"
    processed = (
        f"### Demographic Information\n[Participant] lives in {city} and works as a {job}.\n\n"
        f"### Self Description\n[Participant] spends most days on their work and enjoys {interests[0]} and {interests[1]} after work.\n\n"
        f"### Personality\n[Participant] describes themselves as {'outgoing' if big_five['Extraversion'] in ('High', 'Extremely high') else 'introverted'} "
        f"and {'very organised' if big_five['Conscientiousness'] in ('High', 'Extremely high') else 'fairly relaxed'}.\n\n"
        f"### Shopping Preference\n[Participant] {style}, {value}, and mostly shops for {', '.join(interests)}."
    )
    first_person = style.replace("reads", "read").replace("compares", "compare").replace("buys", "buy").replace("balances", "balance")
    transcript = (f"Interviewer: Can you tell me a bit about yourself?\nParticipant: I live in {city}, I'm a {job}.\n"
                  f"Interviewer: How do you usually shop online?\nParticipant: I {first_person}.")
    return Persona(user_id, traits, interests, survey, raw, transcript, processed)


def persona_conflicts(survey: dict[str, Any]) -> list[str]:
    """Demographic answers that contradict each other (empty for a consistent persona)."""
    demo = survey.get("Demographic Information") or {}
    age, employment, income = demo.get("Age", ""), demo.get("Employment status", ""), demo.get("Yearly household income or stipend", "")
    conflicts = []
    if employment == "Retired" and age in AGES[:3]:
        conflicts.append(f"retired at {age}")
    if employment == "Student" and age in AGES[4:]:
        conflicts.append(f"student at {age}")
    if employment == "Student" and income in INCOMES[3:]:
        conflicts.append(f"student with {income}")
    return conflicts


# -- catalogue ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    asin: str
    title: str
    category: str
    noun: str
    brand: str
    price: float
    rating: float
    reviews: int
    options: dict[str, list[tuple[str, float]]]  # dimension -> [(value, price)]
    subscribe: bool  # sold with "Subscribe & Save": the buy box holds a one-time-purchase form

    @property
    def slug(self) -> str:
        return slug(self.title)


def _catalogue(rng: random.Random, per_category: int = 40) -> dict[str, list[Product]]:
    catalogue: dict[str, list[Product]] = {}
    for category in sorted(CATEGORIES):
        spec = CATEGORIES[category]
        products = []
        for _ in range(per_category):
            noun, brand = rng.choice(spec["nouns"]), rng.choice(spec["brands"])
            features = " ".join(rng.sample(spec["features"], k=rng.randint(1, 3)))
            title = f"{brand} {noun} {features} {rng.choice(['', '2 pack', 'for men women', 'gift set', 'upgraded version'])}".strip()
            price = round(rng.uniform(6, 140), 2)
            dims = rng.sample(sorted(spec["options"]), k=rng.randint(1, len(spec["options"])))
            options = {}
            for d in dims:
                values = rng.sample(spec["options"][d], k=min(len(spec["options"][d]), rng.randint(2, 6)))
                options[d] = [(v, round(price * rng.uniform(0.6, 1.3), 2)) for v in values]
            products.append(Product("B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8)), title, category,
                                    noun, brand, price, round(rng.uniform(3.2, 4.9), 1), rng.randint(3, 25000), options,
                                    rng.random() < 0.25))
        catalogue[category] = products
    return catalogue


def option_label(product: Product, dim: str, value: str, price: float) -> str:
    """The text of an option button; the real ids slug it, prices and savings included."""
    if dim == "size" and not product.subscribe:
        return value
    if price < product.price * 0.85:
        percent = round(100 * (1 - price / product.price))
        return f"${price:.2f} with {percent} percent savings ${price:.2f} ${product.price:.2f} {value}"
    return f"${price:.2f} ${price:.2f} {value}"


# -- pages --------------------------------------------------------------------------------------------

_FOOTER_LINKS = ["Careers", "Blog", "About Amazon", "Investor Relations", "Amazon Devices", "Amazon Science", "Sell products on Amazon",
                 "Sell on Amazon Business", "Become an Affiliate", "Advertise Your Products", "Amazon Business Card", "Shop with Points",
                 "Reload Your Balance", "Your Account", "Your Orders", "Shipping Rates & Policies", "Returns & Replacements", "Help"]
_REVIEW_SENTENCES = [
    "I bought this for my {use} and it has held up better than I expected.", "The {noun} arrived quickly and was well packaged.",
    "Quality feels solid for the price, though the instructions could be clearer.", "After two months of daily use it still works like new.",
    "It stopped working after a few weeks, and customer service was slow to answer.", "The color is slightly different from the photos.",
    "Setup took about five minutes and everything I needed was in the box.", "I compared several brands and this one is the best value.",
    "My partner liked it so much that I ordered a second one.", "It is a bit smaller than I thought, so check the dimensions.",
    "Great {noun} overall, I would recommend it to anyone on a budget.", "The material feels cheap and one part cracked on the first day.",
]
_REVIEWERS = ["Amazon Customer", "Jenny", "M. Alvarez", "Chris P.", "kate", "Daniel R.", "TechDad", "Priya", "Sam W.", "runner22"]


@dataclass
class _State:
    page: str  # home, search, product, cart, checkout
    category: str
    query: str = ""
    results: list[Product] = field(default_factory=list)
    page_no: int = 1
    product: Product | None = None
    selected: dict[str, str] = field(default_factory=dict)
    cart: list[Product] = field(default_factory=list)
    side_bar: bool = False
    filters: list[str] = field(default_factory=list)
    related: list[Product] = field(default_factory=list)  # the session's recommendation rails


@dataclass(frozen=True)
class _Step:
    kind: str  # click / input / terminate
    name: str = ""
    click_types: tuple[tuple[str, float], ...] = ()  # the annotators' labels for this element, with their odds
    text: str = ""
    topic: str = ""  # the rationale grammar's topic
    slots: tuple[tuple[str, str], ...] = ()  # the rationale's slot fillers

    @property
    def purchase(self) -> bool:
        return any(label == "purchase" for label, _ in self.click_types)


def _click(name: str, *labels: str | tuple[str, float], topic: str = "", **slots: str) -> _Step:
    odds = tuple((label, 1.0) if isinstance(label, str) else label for label in labels)
    return _Step("click", name, odds, topic=topic, slots=tuple(slots.items()))


class _Site:
    """Renders pages and lists the actions a page offers; page content is seeded by the page's identity."""

    def __init__(self, seed: int, catalogue: dict[str, list[Product]]) -> None:
        self.seed = seed
        self.catalogue = catalogue
        self.products = tuple(p for products in catalogue.values() for p in products)
        self.by_slug = {p.slug: p for p in self.products}
        self.by_asin = {p.asin: p for p in self.products}
        self._cards: dict[tuple[str, str], str] = {}
        self._reviews: dict[str, tuple[str, ...]] = {}

    def rng(self, *identity: object) -> random.Random:
        return random.Random(f"{self.seed}:" + ":".join(map(str, identity)))

    # Blocks shared by many pages are built once.
    def card(self, prefix: str, p: Product) -> str:
        key = (prefix, p.asin)
        if key not in self._cards:
            self._cards[key] = self._card(prefix, p)
        return self._cards[key]

    def _card(self, prefix: str, p: Product) -> str:
        rng = self.rng("card", p.asin)
        badges = "".join(f"<span>{b}</span>" for b in rng.sample(["Best Seller", "Amazon's Choice", "Limited time deal", "Climate Pledge Friendly",
                                                                   "Overall Pick", "Small Business"], k=rng.randint(0, 2)))
        extra = (f"<div><span>{rng.randint(50, 9000)}+ bought in past month</span><span>List: ${p.price * 1.2:.2f}</span>"
                     f"<span>Save 5% on 2 select item(s)</span><span>FREE delivery {rng.choice(['Tue, May 6', 'Fri, May 9', 'Tomorrow'])} on $35 of items shipped by Amazon</span>"
                     f"<span>Or fastest delivery {rng.choice(['Tomorrow, May 4', 'Today 2 PM - 6 PM'])}</span>"
                 + "".join(f"<span>{escape(v)}</span>" for d in p.options for v, _ in p.options[d][:3]) + "</div>")
        return (f'<div data-asin="{p.asin}" data-component-type="s-search-result"><div>{badges}</div>'
                f'<a name="{prefix}.{p.slug}.product_image" href="/dp/{p.asin}"><img alt="{escape(p.title)}"/></a>'
                f'<h2><a name="{prefix}.{p.slug}.product_detail" href="/dp/{p.asin}">{escape(p.title)}</a></h2>'
                f"<span>{p.rating} out of 5 stars</span><span>{p.reviews:,} ratings</span><span>${p.price:.2f}</span>{extra}"
                f'<button name="{prefix}.{p.slug}.add_to_cart" type="button">Add to cart</button></div>')

    def reviews(self, p: Product) -> tuple[str, ...]:
        """Review blocks of a product (each 0.5-2K characters); pages show as many as their length allows."""
        if p.asin not in self._reviews:
            self._reviews[p.asin] = self._review_blocks(p)
        return self._reviews[p.asin]

    def _review_blocks(self, p: Product) -> tuple[str, ...]:
        rng = self.rng("reviews", p.asin)
        blocks = []
        for i in range(1, 121):
            body = " ".join(rng.choice(_REVIEW_SENTENCES).format(noun=p.noun, use=rng.choice(_USES)) for _ in range(rng.randint(3, 12)))
            blocks.append(f'<div data-hook="review"><span>{rng.choice(_REVIEWERS)}</span><span>{rng.randint(1, 5)}.0 out of 5 stars</span>'
                          f"<span>Reviewed in the United States on {rng.choice(['March', 'April', 'May'])} {rng.randint(1, 28)}, 2025</span>"
                          f"<span>Verified Purchase</span><span>{escape(body)}</span><span>{rng.randint(0, 80)} people found this helpful</span>"
                          f'<button name="reviews.review_{i}.helpful">Helpful</button><a name="reviews.review_{i}.report">Report</a></div>')
        return tuple(blocks)

    def rail(self, rail_name: str, title: str, products: Iterable[Product]) -> str:
        return (f'<div name="{rail_name}"><h2>{escape(title)}</h2><button name="{rail_name}.previous_page">Previous page</button>'
                + "".join(f'<div><a name="{rail_name}.{r.slug}" href="/dp/{r.asin}">{escape(r.title)}</a>'
                          f"<span>{r.rating} out of 5 stars</span><span>{r.reviews:,}</span><span>${r.price:.2f}</span></div>" for r in products)
                + f'<button name="{rail_name}.next_page">Next page</button></div>')

    def header(self, query: str, cart_count: int) -> str:
        departments = "".join(f"<option>{escape(c.title())}</option>" for c in sorted(CATEGORIES))
        return (f'<header><div name="nav_bar"><a name="nav_bar.logo" aria-label="Amazon">amazon</a><span>Deliver to Blacksburg 24060</span>'
                f'<select name="nav_bar.search_dropdown"><option>All Departments</option>{departments}</select>'
                f'<input name="nav_bar.search_input" type="text" placeholder="Search Amazon" value="{escape(query)}"/>'
                f'<button name="nav_bar.search_button">Go</button><a name="nav_bar.account_and_lists">Hello, sign in Account &amp; Lists</a>'
                f'<a name="nav_bar.returns_and_orders">Returns &amp; Orders</a><a name="go_to_cart">Cart {cart_count}</a></div>'
                '<div name="nav_bar.menu"><a name="nav_bar.menu.all">All</a><a name="nav_bar.menu.todays_deals">Today\'s Deals</a>'
                '<a name="nav_bar.menu.customer_service">Customer Service</a><a name="nav_bar.menu.registry">Registry</a>'
                '<a name="nav_bar.menu.gift_cards">Gift Cards</a><a name="nav_bar.menu.sell">Sell</a></div></header>')

    def footer(self) -> str:
        return ('<footer><a name="back_to_top">Back to top</a><div>' + "".join(f"<span>{escape(link)}</span>" for link in _FOOTER_LINKS)
                + "</div><div><span>Conditions of Use</span><span>Privacy Notice</span><span>Your Ads Privacy Choices</span></div>"
                "<div>© 1996-2025, Amazon.com, Inc. or its affiliates</div></footer>")

    def page(self, state: _State) -> tuple[str, list[tuple[float, _Step]]]:
        """The page of ``state`` and the extra targets its filler holds (rails, reviews) with their weights."""
        identity = (state.page, state.query, state.page_no, state.product.asin if state.product else "",
                    ",".join(c.asin for c in state.cart), ",".join(state.filters))
        rng = self.rng("page", *identity)
        median_chars, sigma = PAGE_LENGTH[state.page]
        target = min(MAX_PAGE_CHARS, max(MIN_PAGE_CHARS, int(median_chars * math.exp(rng.gauss(0, sigma)))))
        head, body, tail = self.header(state.query, len(state.cart)), [], []
        fillers: Iterable[str] = ()
        extras: list[tuple[float, _Step]] = []
        if state.page == "home":
            body.append(self.rail("pick_up_where_you_left_off", "Pick up where you left off", state.related[:6]))
            fillers = (self.rail(f"deals_for_you_{i}", "Deals for you", rng.sample(self.products, 12)) for i in count())
        elif state.page == "search":
            suggestions = [f"{state.query} {w}" for w in ("for men", "for women", "waterproof", "2 pack", "cheap")]
            body.append('<div name="suggested_terms">' + "".join(f'<a name="suggested_term.{slug(s)}">{escape(s)}</a>' for s in suggestions) + "</div>")
            brands = CATEGORIES[state.category]["brands"]
            body.append('<div name="filter"><span>Customer Reviews</span><a name="filter.customer_reviews.4_stars_up">4 Stars &amp; Up</a>'
                        '<span>Price</span>' + "".join(f'<a name="filter.price.{slug(r)}">{escape(r)}</a>' for r in ("Up to $25", "$25 to $50", "$50 to $100", "$100 & above"))
                        + '<span>Brands</span>' + "".join(f'<input type="checkbox" name="filter.brands.{slug(b)}"/><span>{escape(b)}</span>' for b in brands)
                        + '<a name="filter.delivery_day.get_it_by_tomorrow">Get It by Tomorrow</a></div>')
            body.append(f'<div><span>1-{len(state.results)} of over 1,000 results for "{escape(state.query)}"</span>'
                        + "".join(f'<a name="filter.applied.{slug(f)}">Clear {escape(f)}</a>' for f in state.filters) + "</div>")
            body.extend(self.card("search_results", p) for p in state.results[:8])
            fillers = chain((self.card("search_results", p) for p in rng.sample(self.catalogue[state.category], 40)),
                            (self.rail(f"related_searches_{i}", "Related searches", rng.sample(self.products, 10)) for i in count()))
            tail.append('<div name="pagination">' + "".join(f'<a name="pagination.{n}">{n}</a>' for n in range(1, 8))
                        + '<a name="pagination.next">Next</a></div>')
        elif state.page == "product" and state.product:
            p = state.product
            body.append(f'<div><a name="breadcrumb.{slug(p.category)}">{escape(p.category.title())}</a></div>'
                        '<div name="image_gallery"><img alt="' + escape(p.title) + '"/>'
                        + "".join(f'<button name="image_gallery.thumbnail.{i}"><img/></button>' for i in range(1, 7)) + "</div>"
                        f'<h1>{escape(p.title)}</h1><a name="visit_the_{slug(p.brand)}_store">Visit the {escape(p.brand)} Store</a>'
                        f'<span>{p.rating} out of 5 stars</span><a name="reviews.see_all_reviews">{p.reviews:,} ratings</a><span>${p.price:.2f}</span>'
                        '<div><input type="checkbox" name="coupon.checkbox"/><span>Apply 10% coupon</span></div>')
            for dim, values in p.options.items():
                chosen = state.selected.get(dim, values[0][0])
                body.append(f'<div name="product_options.{dim}"><span>{dim.title()}: {escape(chosen)}</span>' + "".join(
                    f'<button name="product_options.{dim}.button_list.{slug(option_label(p, dim, v, price))}">{escape(option_label(p, dim, v, price))}</button>'
                    for v, price in values) + "</div>")
            form = "buybox.one_time_purchase.purchase_form" if p.subscribe else "buybox.purchase_form"
            subscribe = ('<div name="buybox.subscribe_and_save"><span>Subscribe &amp; Save 5%</span>'
                         '<button name="buybox.subscribe_and_save.set_up_now">Set Up Now</button></div>') if p.subscribe else ""
            body.append(f'<div name="buybox"><span>${p.price:.2f}</span><span>FREE Returns</span><span>In Stock</span>{subscribe}'
                        f'<div name="{form}"><select name="{form}.quantity"><option>1</option><option>2</option><option>3</option></select>'
                        f'<button name="{form}.add_to_cart">Add to Cart</button><button name="{form}.buy_now">Buy Now</button></div>'
                        '<a name="buybox.add_to_list">Add to List</a></div>')
            about = self.rng("about", p.asin)
            body.append("<h2>About this item</h2><ul>" + "".join(
                f"<li>{escape(s.format(noun=p.noun, use=about.choice(_USES)))}</li>" for s in about.sample(_REVIEW_SENTENCES, 6)) + "</ul>")
            reviews = self.reviews(p)
            fillers = chain([self.rail("related_to_items_you_ve_viewed", "Related to items you've viewed", state.related[:10])], reviews,
                            (self.rail(f"customers_also_bought_{i}", "Customers who bought this item also bought", rng.sample(self.products, 12))
                             for i in count()))
            extras += [(0.2, _click("reviews.review_1.helpful", "review", topic="review"))]
            if state.side_bar and state.cart:
                tail.append('<div name="cart_side_bar"><span>Subtotal</span><a name="cart_side_bar.go_to_cart">Go to Cart</a>' + "".join(
                    f'<a name="cart_side_bar.product_list.{c.slug}.product_image"><img alt="{escape(c.title)}"/></a>' for c in state.cart) + "</div>")
        elif state.page == "cart":
            body.append("<h1>Shopping Cart</h1>")
            for c in state.cart:
                body.append(f'<div name="active_item_list.{c.slug}"><input type="checkbox" name="active_item_list.{c.slug}.checkbox"/>'
                            f'<a name="active_item_list.{c.slug}.product_detail">{escape(c.title)}</a><span>${c.price:.2f}</span><span>In Stock</span>'
                            f'<button name="active_item_list.{c.slug}.quantity.decrease">-</button><span>1</span>'
                            f'<button name="active_item_list.{c.slug}.quantity.increase">+</button>'
                            f'<button name="active_item_list.{c.slug}.delete">Delete</button><button name="active_item_list.{c.slug}.save_for_later">Save for later</button></div>')
            if not state.cart:
                body.append("<div>Your Amazon Cart is empty</div>")
            body.append(f'<div><span>Subtotal ({len(state.cart)} items): ${sum(c.price for c in state.cart):.2f}</span>'
                        '<button name="check_out">Proceed to checkout</button></div>')
            fillers = (self.rail(f"customers_also_bought_{i}", "Customers who bought items in your cart also bought",
                                 rng.sample(self.products, 12)) for i in count())
        elif state.page == "checkout":
            body.append('<h1>Checkout</h1><div name="shipping_address"><span>Delivering to Alex, 100 Main St</span><a name="shipping_address.change">Change</a></div>'
                        '<div name="payment_method"><span>Paying with Visa 1234</span><a name="payment_method.change">Change</a></div>'
                        + "".join(f"<div><span>{escape(c.title)}</span><span>${c.price:.2f}</span></div>" for c in state.cart)
                        + '<button name="place_your_order">Place your order</button>')
            fillers = (f"<div><span>{escape(rng.choice(_REVIEW_SENTENCES).format(noun='order', use='order'))}</span></div>" for _ in count())
        used = len(head) + sum(map(len, body)) + sum(map(len, tail)) + 600
        for block in fillers:
            if used + len(block) > target:
                break
            body.append(block)
            used += len(block)
        html = "<html><body>" + head + "".join(body) + "".join(tail) + self.footer() + "</body></html>"
        return html, [(w, s) for w, s in extras if f'name="{s.name}"' in html]

    def options(self, state: _State, persona: Persona, buying: bool) -> list[tuple[float, _Step]]:
        """Weighted candidate actions on the current page; the weights carry the persona."""
        t = persona.traits
        research, quick, value, fun = t["research"], t["quick"], t["value"], t["fun"]
        # The typed text is chosen when the step is taken (it depends on the page's query).
        out: list[tuple[float, _Step]] = [
            (3.0 if state.page == "home" else 0.7 + 0.1 * fun, _Step("input", "nav_bar.search_input", topic="search")),
            (0.08, _click("go_to_cart", ("other", 0.7), ("nav_bar", 0.3), topic="other")),
            (0.06, _click("nav_bar.returns_and_orders", "nav_bar")),
            (0.05, _click("nav_bar.search_button", ("search", 0.8), ("nav_bar", 0.2))),
        ]
        purchase = max(0.05, 0.12 + 0.12 * quick - 0.04 * research) if buying else 0.0
        if state.page == "search":
            out += [(4.0 + quick, _click(f"search_results.{p.slug}.product_detail", "product_link", topic="product_link", noun=p.noun))
                    for p in state.results[:4]]
            out += [(0.8, _click(f"search_results.{p.slug}.product_image", "product_link", topic="product_link", noun=p.noun))
                    for p in state.results[4:6]]
            out += [(0.9 + 0.5 * value, _click("filter.customer_reviews.4_stars_up", "filter", topic="filter")),
                    (0.4 + 0.4 * value, _click("filter.price.up_to_25", "filter", topic="filter")),
                    (0.3, _click(f"filter.brands.{slug(CATEGORIES[state.category]['brands'][0])}", "filter", topic="filter")),
                    (0.7 + 0.3 * research, _click(f"pagination.{state.page_no + 1}", "page_related")),
                    (0.15, _click("pagination.next", "page_related")),
                    (0.4, _click(f"suggested_term.{slug(state.query + ' waterproof')}", ("suggested_term", 0.85), ("search", 0.15), topic="search",
                                 noun=state.query))]
            if purchase:
                p = state.results[0]
                out.append((purchase, _click(f"search_results.{p.slug}.add_to_cart", "purchase", topic="purchase", noun=p.noun)))
        elif state.page == "product" and state.product:
            p = state.product
            for dim, values in p.options.items():
                out += [(1.3 + 0.6 * research - 0.3 * quick,
                         _click(f"product_options.{dim}.button_list.{slug(option_label(p, dim, v, price))}", "product_option",
                                topic="product_option", dim=dim, value=v)) for v, price in values]
            form = "buybox.one_time_purchase.purchase_form" if p.subscribe else "buybox.purchase_form"
            out += [(0.7 + 0.6 * research, _click("reviews.see_all_reviews", "review", topic="review")),
                    (0.3 + 0.4 * research, _click("reviews.see_all_reviews", ("review", 0.6), ("other", 0.4), topic="review")),
                    (0.3, _click(f"{form}.quantity", ("quantity", 0.8), ("purchase", 0.2) if buying else ("other", 0.2))),
                    (0.4 + 0.3 * fun, _click("related_to_items_you_ve_viewed.next_page", ("page_related", 0.75), ("other", 0.25))),
                    (0.15 + 0.2 * value, _click("coupon.checkbox", "other", topic="other")),
                    (0.2, _click(f"visit_the_{slug(p.brand)}_store", "other", topic="other")),
                    (0.15 + 0.1 * t["novelty"], _click("image_gallery.thumbnail.2", "other"))]
            out += [(0.15, _click(f"related_to_items_you_ve_viewed.{r.slug}", ("other", 0.6), ("product_link", 0.4), topic="product_link", noun=r.noun))
                    for r in state.related[:3]]
            if state.side_bar and state.cart:
                out += [(1.0, _click("cart_side_bar.go_to_cart", "cart_side_bar")),
                        (0.4, _click(f"cart_side_bar.product_list.{state.cart[-1].slug}.product_image", "cart_side_bar"))]
            if purchase:
                out += [(1.2 * purchase + 0.3, _click(f"{form}.add_to_cart", "purchase", topic="purchase", noun=p.noun)),
                        (0.3 * purchase, _click(f"{form}.buy_now", "purchase", topic="purchase", noun=p.noun))]
                if p.subscribe:
                    out.append((0.2 * purchase, _click("buybox.subscribe_and_save.set_up_now", ("purchase", 0.7), ("other", 0.3), topic="purchase")))
        elif state.page == "cart":
            for c in state.cart:
                out += [(1.2, _click(f"active_item_list.{c.slug}.product_detail", "product_link", topic="product_link", noun=c.noun)),
                        (0.5 + 0.3 * t["overwhelmed"], _click(f"active_item_list.{c.slug}.delete", "quantity", topic="quantity")),
                        (0.4, _click(f"active_item_list.{c.slug}.quantity.increase", "quantity", topic="quantity")),
                        (0.3, _click(f"active_item_list.{c.slug}.checkbox", ("cart_page_select", 0.8), ("other", 0.2))),
                        (0.3, _click(f"active_item_list.{c.slug}.save_for_later", "other", topic="other"))]
            if purchase and state.cart:
                out.append((1.5 * purchase + 0.5, _click("check_out", "purchase", topic="purchase")))
        elif state.page == "checkout":
            out += [(0.6, _click("shipping_address.change", "other")), (0.4, _click("payment_method.change", "other"))]
            if purchase:
                out.append((3.0, _click("place_your_order", "purchase", topic="purchase")))
        return out

    def apply(self, step: _Step, state: _State, rng: random.Random, persona: Persona) -> None:
        """Move ``state`` to the page the action leads to."""
        name = step.name
        if step.kind == "input":
            category = state.category or rng.choice(persona.interests)
            state.page, state.category, state.query, state.page_no, state.filters = "search", category, step.text, 1, []
            state.results = rng.sample(self.catalogue[category], 16)
        elif name.startswith("suggested_term."):
            state.query, state.page_no = name.split(".", 1)[1].replace("_", " "), 1
            state.results = rng.sample(self.catalogue[state.category], 16)
        elif name.startswith("filter."):
            state.filters.append(name.split(".")[-1].replace("_", " "))
            state.results = sorted(state.results, key=lambda p: -p.rating)[: max(4, len(state.results) - 3)]
        elif name.startswith("pagination."):
            state.page_no += 1
            state.results = rng.sample(self.catalogue[state.category], 16)
        elif name.endswith((".product_detail", ".product_image")) or (name.startswith("related_to_items_you_ve_viewed.")
                                                                     and not name.endswith("_page")):
            parts = name.split(".")
            product_slug = parts[2] if name.startswith("cart_side_bar.") else parts[1]
            state.page, state.product, state.selected, state.side_bar = "product", self.by_slug[product_slug], {}, False
            state.category = state.product.category
        elif name.startswith("product_options.") and state.product:
            dim = name.split(".")[1]
            chosen = next(v for v, price in state.product.options[dim] if name.endswith(slug(option_label(state.product, dim, v, price))))
            state.selected[dim] = chosen
        elif name.endswith(("add_to_cart", "buy_now", "set_up_now")):
            product = state.product if state.page == "product" else state.results[0]
            if product and product not in state.cart:
                state.cart.append(product)
            state.side_bar = state.page == "product"
            if name.endswith("buy_now"):
                state.page = "checkout"
        elif name in ("go_to_cart", "cart_side_bar.go_to_cart"):
            state.page = "cart"
        elif name.endswith(".delete"):
            state.cart = [c for c in state.cart if c.slug != name.split(".")[1]]
        elif name == "check_out":
            state.page = "checkout"


# -- sessions -----------------------------------------------------------------------------------------


def _url(state: _State) -> str:
    if state.page == "search":
        return f"https://www.amazon.com/s?k={state.query.replace(' ', '+')}" + (f"&page={state.page_no}" if state.page_no > 1 else "")
    if state.page == "product" and state.product:
        return f"https://www.amazon.com/{slug(state.product.title)[:40].replace('_', '-')}/dp/{state.product.asin}"
    return {"home": "https://www.amazon.com/", "cart": "https://www.amazon.com/cart", "checkout": "https://www.amazon.com/checkout/spc"}[state.page]


def _buys(persona: Persona, rng: random.Random) -> bool:
    t = persona.traits
    odds = 0.0 + 0.35 * t["quick"] - 0.25 * t["research"] + 0.15 * t["fun"] - 0.1 * t["overwhelmed"]
    return rng.random() < 1 / (1 + math.exp(-odds))


def _first_state(rng: random.Random, site: _Site, persona: Persona) -> _State:
    category = rng.choice(persona.interests)
    products = site.catalogue[category]
    related = rng.sample(products, 12)
    roll = rng.random()
    if roll < 0.45:
        return _State("product", category, product=rng.choice(products), related=related)
    if roll < 0.62:
        return _State("search", category, query=rng.choice(CATEGORIES[category]["nouns"]), results=rng.sample(products, 16), related=related)
    if roll < 0.75:
        return _State("cart", category, cart=rng.sample(products, rng.randint(1, 3)), related=related)
    return _State("home", category, related=related)


def _towards_purchase(state: _State, persona: Persona) -> list[tuple[float, _Step]]:
    """Steps that bring a buyer who is running out of session closer to a purchase button."""
    if state.cart:
        return [(1.0, _click("go_to_cart", ("other", 0.7), ("nav_bar", 0.3)))]
    if state.page == "search":
        p = state.results[0]
        return [(1.0, _click(f"search_results.{p.slug}.product_detail", "product_link", topic="product_link", noun=p.noun))]
    if state.related:
        r = state.related[0]
        if state.page in ("product", "home"):
            rail = "related_to_items_you_ve_viewed" if state.page == "product" else "pick_up_where_you_left_off"
            return [(1.0, _click(f"{rail}.{r.slug}", ("other", 0.6), ("product_link", 0.4), topic="product_link", noun=r.noun))]
    return [(1.0, _Step("input", "nav_bar.search_input", topic="search"))]


def _simulate_session(rng: random.Random, site: _Site, persona: Persona, start: datetime, length: int,
                      buying: bool) -> list[dict[str, Any]]:
    """``length`` actions; a buying session ends on a purchase click (a few extra steps may be needed to reach one)."""
    state = _first_state(rng, site, persona)
    rows: list[dict[str, Any]] = []
    when = start
    index = 0
    while True:
        html, extras = site.page(state)
        candidates = site.options(state, persona, buying) + extras
        remaining = length - index - 1
        if remaining < -8:  # no purchase within reach after all: the shopper gives up
            buying = False
        purchases = [(w, s) for w, s in candidates if s.purchase]
        done = False
        if remaining <= 0 and not buying:
            step, done = _Step("terminate", topic="terminate"), True
        elif remaining <= 0 and purchases:
            step, done = max(purchases, key=lambda c: c[0])[1], True
        else:
            if remaining <= 0 or (buying and remaining <= 2 and not purchases):
                candidates = _towards_purchase(state, persona)
            step = rng.choices([s for _, s in candidates], [max(w, 0.01) for w, _ in candidates])[0]
        labels, odds = zip(*step.click_types) if step.click_types else (("",), (1.0,))
        click_type = rng.choices(labels, odds)[0]
        text = ""
        if step.kind == "input":
            nouns = CATEGORIES[state.category]["nouns"]
            text = rng.choice(nouns) if not state.query or rng.random() < 0.5 else f"{state.query} {rng.choice(['cheap', 'best', 'for women', 'for men', 'set'])}"
            step = _Step("input", step.name, text=text, topic="search", slots=(("noun", text),))
        note = ""
        if step.topic and rng.random() < RATIONALE_SHARE:
            slots = dict(step.slots)
            slots.setdefault("noun", state.product.noun if state.product else (state.query or "item"))
            note = rationale(rng, step.topic if step.kind != "click" or click_type != "purchase" else "purchase", persona, **slots)
        product = state.product if state.page == "product" else (state.results[0] if state.page == "search" else None)
        rows.append({
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
            "action_type": step.kind,
            "click_type": click_type if step.kind == "click" else "",
            "semantic_id": step.name,
            "input_text": text,
            "url": _url(state),
            "simplified_html": html,
            "rationale": note,
            "page_meta": json.dumps({"title": "Amazon.com", "url": _url(state)}),
            "element_meta": json.dumps({"name": step.name, "data": {}}) if step.name else "",
            "mouse_position": json.dumps({"x": rng.randint(0, 1500), "y": rng.randint(0, 800)}) if step.kind != "terminate" else "",
            "window_size": json.dumps({"width": 1512, "height": 823}),
            "products": json.dumps([{"asin": product.asin, "title": product.title, "price": f"${product.price:.2f}", "quantity": 1,
                                     "options": sorted(state.selected.values())}]) if click_type == "purchase" and product else "",
            "image": "",
        })
        if done:
            return rows
        site.apply(step, state, rng, persona)
        when += timedelta(seconds=rng.randint(3, 90))
        index += 1


def _lengths(rng: random.Random, sessions: int, actions: int) -> list[int]:
    """Heavy-tailed session lengths (many short sessions, a few long comparisons) that sum to ``actions``."""
    average = actions / sessions
    lengths = [max(1, min(80, round(rng.expovariate(1 / (average - 0.5)) + 0.5))) for _ in range(sessions)]
    while sum(lengths) != actions:
        i = rng.randrange(sessions)
        if sum(lengths) < actions and lengths[i] < 80:
            lengths[i] += 1
        elif sum(lengths) > actions and lengths[i] > 1:
            lengths[i] -= 1
    return lengths


@dataclass(frozen=True)
class SimulatedTables:
    users: dict[str, list[dict[str, Any]]]  # by split
    sessions: dict[str, list[dict[str, Any]]]
    actions: dict[str, list[dict[str, Any]]]


def simulate(seed: int = DEFAULT_SEED, shape: Shape = DEFAULT_SHAPE, *, only: Iterable[int] | None = None) -> SimulatedTables:
    """The rows of the simulated dataset, split by session with ``shape``'s counts.

    ``only`` keeps the sessions of those indices (in the order sessions are drawn): each session has its
    own random stream, so a subset comes out exactly as in the whole dataset. Buying sessions may end
    early on a purchase or run a few steps over, so the action counts are close to the shape's, not equal.
    """
    rng = random.Random(seed)
    personas = [_persona(rng) for _ in range(shape.users)]
    site = _Site(seed, _catalogue(rng))
    n_sessions = shape.train_sessions + shape.test_sessions
    owners = [personas[i % len(personas)] for i in range(n_sessions)]  # every user gets sessions, some more
    rng.shuffle(owners)
    order = list(range(n_sessions))
    rng.shuffle(order)
    test = set(order[: shape.test_sessions])
    lengths = {"test": _lengths(rng, shape.test_sessions, shape.test_actions),
               "train": _lengths(rng, shape.train_sessions, shape.train_actions)}
    keep = set(range(n_sessions) if only is None else only)
    tables = SimulatedTables({"train": [], "test": []}, {"train": [], "test": []}, {"train": [], "test": []})
    seen: dict[str, set[str]] = {"train": set(), "test": set()}
    drawn = {"train": 0, "test": 0}
    epoch = datetime(2025, 3, 1, tzinfo=timezone.utc)
    for i, persona in enumerate(owners):
        split = "test" if i in test else "train"
        length = lengths[split][drawn[split]]
        drawn[split] += 1
        if i not in keep:
            continue
        session_rng = random.Random(f"{seed}:session:{i}")
        start = epoch + timedelta(seconds=session_rng.randint(0, 75 * 86400), milliseconds=session_rng.randint(0, 999))
        buying = _buys(persona, session_rng)
        # A buyer takes about one step more than planned to reach a purchase button: plan one fewer.
        rows = _simulate_session(session_rng, site, persona, start, length - 1 if buying and length > 2 else length, buying)
        session_id = f"{persona.user_id}_{rows[0]['timestamp']}_{rows[-1]['timestamp']}"
        for position, row in enumerate(rows):
            row["session_id"] = session_id
            row["action_id"] = f"{session_id}_{position}"
        tables.sessions[split].append({"session_id": session_id, "user_id": persona.user_id, "action_count": len(rows)})
        tables.actions[split].extend(rows)
        if persona.user_id not in seen[split]:
            seen[split].add(persona.user_id)
            tables.users[split].append({
                "user_id": persona.user_id, "survey": json.dumps(persona.survey), "raw_survey": json.dumps(persona.raw_survey),
                "interview_transcript": persona.interview, "interview_transcript_processed": persona.interview_processed,
            })
    return tables


ACTION_COLUMNS = ("session_id", "action_id", "timestamp", "action_type", "click_type", "semantic_id", "mouse_position",
                  "element_meta", "url", "window_size", "page_meta", "simplified_html", "rationale", "products",
                  "input_text", "image")
USER_COLUMNS = ("user_id", "survey", "raw_survey", "interview_transcript", "interview_transcript_processed")
# zstd over large parquet pages: consecutive pages of a session share most of their HTML.
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 12, "data_page_size": 16 << 20, "row_group_size": 256}


def write_tables(root: str | Path, tables: SimulatedTables) -> Path:
    """Write ``tables`` under ``root/OPeRA_filtered/`` in the Hub layout; returns ``root``."""
    root = Path(root)
    base = root / "OPeRA_filtered"
    string_schema = lambda names: pa.schema([(n, pa.string()) for n in names])  # noqa: E731
    session_schema = pa.schema([("session_id", pa.string()), ("user_id", pa.string()), ("action_count", pa.int64())])
    for split in ("train", "test"):
        for part in ("user", "session"):
            (base / part / split).mkdir(parents=True, exist_ok=True)
        (base / "action").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(tables.users[split], schema=string_schema(USER_COLUMNS)),
                       base / "user" / split / f"{split}.parquet", **PARQUET_OPTIONS)
        pq.write_table(pa.Table.from_pylist(tables.sessions[split], schema=session_schema),
                       base / "session" / split / f"{split}.parquet", **PARQUET_OPTIONS)
        pq.write_table(pa.Table.from_pylist(tables.actions[split], schema=string_schema(ACTION_COLUMNS)),
                       base / "action" / f"{split}-00000-of-00001.parquet", **PARQUET_OPTIONS)
    return root


def write_layout(root: str | Path, seed: int = DEFAULT_SEED, shape: Shape = DEFAULT_SHAPE) -> Path:
    """Simulate and write the dataset under ``root/OPeRA_filtered/`` in the Hub layout; returns ``root``."""
    return write_tables(root, simulate(seed, shape))


# -- statistics ---------------------------------------------------------------------------------------


def _quantile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


def name_pattern(name: str) -> str:
    """A target name with its product, price and value segments generalised, to compare vocabularies."""
    parts = name.split(".")
    generic = [p if p in _STRUCTURE or (len(p) < 24 and "_" not in p and not p.isdigit() and before != "button_list") else "*"
               for before, p in zip(["", *parts], parts)]
    return ".".join(generic)


_STRUCTURE = {"nav_bar", "search_input", "search_button", "go_to_cart", "cart_side_bar", "product_list", "product_image",
              "product_detail", "active_item_list", "save_for_later", "button_list", "product_options", "purchase_form",
              "one_time_purchase", "add_to_cart", "buy_now", "check_out", "coupon", "checkbox", "search_results",
              "related_to_items_you_ve_viewed", "customers_also_bought", "see_all_reviews", "place_your_order",
              "returns_and_orders", "account_and_lists", "suggested_term", "customer_reviews", "4_stars_up", "subscribe_and_save",
              "set_up_now", "image_gallery", "pick_up_where_you_left_off", "next_page", "previous_page"}


def stats(data: OperaData) -> dict[str, dict[str, Any]]:
    """Per split: the figures ``opera_stats`` prints next to the real dataset's."""
    out: dict[str, dict[str, Any]] = {}
    for split, actions in data.actions.items():
        types = Counter(a.action_type for a in actions)
        clicks = [a for a in actions if a.action_type == "click"]
        click_types = Counter(a.click_type for a in clicks)
        labels_by_name: dict[str, set[str]] = defaultdict(set)
        for a in clicks:
            labels_by_name[a.semantic_id].add(a.click_type)
        by_session: dict[str, list[Any]] = defaultdict(list)
        for a in actions:
            by_session[a.session_id].append(a)
        buyers = {a.session_id for a in clicks if a.click_type == "purchase"}
        early = sum(1 for steps in by_session.values() for i, a in enumerate(steps)
                    if a.action_type == "click" and a.click_type == "purchase" and i < len(steps) - 3)
        lengths = [len(steps) for steps in by_session.values()]
        pages = [len(a.simplified_html) for a in actions]
        rationales = [a.rationale for a in actions if a.rationale]
        users = {s.user_id for s in data.sessions[split]}
        out[split] = {
            "actions": len(actions),
            "sessions": len(data.sessions[split]),
            "users": len(users),
            "action_types": dict(sorted(types.items())),
            "session_length": {"mean": round(mean(lengths), 2) if lengths else 0.0, "median": median(lengths) if lengths else 0,
                               "min": min(lengths, default=0), "max": max(lengths, default=0)},
            "purchase_sessions": len(buyers),
            "purchase_rate": round(len(buyers) / len(data.sessions[split]), 3) if data.sessions[split] else 0.0,
            "purchase_clicks": click_types.get("purchase", 0),
            "purchase_clicks_before_last_3": early,
            "click_types": dict(click_types.most_common()),
            "click_names": len(labels_by_name),
            "ambiguous_click_names": sum(1 for labels in labels_by_name.values() if len(labels) > 1),
            "rationales": len(rationales),
            "distinct_rationales": len(set(rationales)),
            "persona_conflicts": sum(1 for uid in users if persona_conflicts(data.users[uid].survey)),
            "instances": len(actions) - len(by_session),
            "page_chars": {"min": min(pages, default=0), "p10": _quantile(pages, 0.1), "median": int(median(pages)) if pages else 0,
                           "p90": _quantile(pages, 0.9), "max": max(pages, default=0)},
        }
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the simulated OPeRA-format dataset in the Hub layout.")
    parser.add_argument("root", type=Path, help="output folder (OPeRA_filtered/ is created inside)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    write_layout(args.root, args.seed)
