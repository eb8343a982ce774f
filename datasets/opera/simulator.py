"""A seeded simulator of online-shopping sessions that writes the OPeRA Hub parquet layout.

The real OPeRA rows cannot ship with the service (and its pages run to 626K characters), so the bundled
benchmark is simulated in the same format: persona tables with the real survey keys, a product catalogue,
simplified-HTML pages whose clickable targets carry ``name="..."`` semantic ids in the real style, and
sessions of click / input / terminate actions with the 13 click types and some rationales. Each persona's
survey answers drive its behaviour (researchers read reviews and compare options, quick shoppers buy
sooner, value seekers filter and use coupons), so a persona is informative, as in the real data.

Everything comes from one ``random.Random(seed)``; the same seed writes byte-identical parquet files.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html import escape
from pathlib import Path
from statistics import mean, median
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datasets.opera.loader import OperaData

SIMULATOR_VERSION = "1"
DEFAULT_SEED = 2025
SHAPE = {"users": 51, "train_sessions": 437, "test_sessions": 90, "train_actions": 4864, "test_actions": 992}
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
    "bike accessories": {"nouns": ["bike tail light", "bike frame bag", "bike u lock", "handlebar tape", "saddle bag"],
                         "brands": ["Lumiere Co", "Kryptonite", "Fizik", "Lamicall", "Ndakter"], "options": {"color": ["black", "green", "mint green", "white"], "size": ["small", "large", "3mm"]}},
    "air fresheners": {"nouns": ["car air freshener", "scented ceramic diffuser", "closet air freshener"],
                       "brands": ["Airkeep", "Glade", "Febreze"], "options": {"color": ["ocean mist sea salt", "cedar wood", "clean linen", "white jasmine", "cashmere vanilla"], "style": ["tassel ceramic", "square ceramic"]}},
    "kitchen": {"nouns": ["nonstick frying pan", "chef knife", "pour over coffee maker", "glass food containers"],
                "brands": ["Cuisinart", "Henckels", "Hario", "Pyrex"], "options": {"size": ["8 inch", "10 inch", "12 inch"], "color": ["black", "silver", "red"]}},
    "skincare": {"nouns": ["hydrating face moisturizer", "vitamin c serum", "mineral sunscreen spf 50"],
                 "brands": ["CeraVe", "La Roche Posay", "Neutrogena"], "options": {"size": ["1 fl oz", "1.7 fl oz", "3 fl oz"]}},
    "headphones": {"nouns": ["wireless earbuds", "noise cancelling headphones", "usb c microphone"],
                   "brands": ["Soundcore", "Sony", "Fifine", "JBL"], "options": {"color": ["black", "white", "navy blue"]}},
    "nail polish": {"nouns": ["gel nail polish", "quick dry top coat", "nail polish set"],
                    "brands": ["Essie", "OPI", "Sally Hansen"], "options": {"color": ["ballet slippers", "bordeaux", "mint candy apple", "licorice"]}},
    "running": {"nouns": ["running shoes", "running socks", "hydration vest"],
                "brands": ["Brooks", "Asics", "Saucony", "Nathan"], "options": {"size": ["7", "8", "9", "10", "11"], "color": ["black white", "grey", "blue"]}},
    "home office": {"nouns": ["monitor stand", "ergonomic office chair", "desk lamp", "mechanical keyboard"],
                    "brands": ["Amazon Basics", "Sihoo", "BenQ", "Keychron"], "options": {"color": ["black", "white", "walnut"]}},
}
ADJECTIVES = ["waterproof", "premium", "lightweight", "rechargeable", "portable", "heavy duty", "compact", "classic", "upgraded"]
PURPOSES = ["for men women", "for daily use", "gift set", "2 pack", "with storage bag", "anti slip"]
CITIES = ["Boston", "Blacksburg", "Seattle", "Austin", "Chicago", "Pittsburgh", "San Diego", "Columbus", "Atlanta"]
JOBS = [("PhD student in computer science", "Student", "Graduate degree or current grad student (MA, MS, MBA, etc.)"),
        ("research scientist", "Full-time employee", "Doctoral degree or current doctoral student (PhD, JD, MD, DDS etc.)"),
        ("nurse", "Full-time employee", "Bachelor's degree"), ("high school teacher", "Full-time employee", "Bachelor's degree"),
        ("software engineer", "Full-time employee", "Graduate degree or current grad student (MA, MS, MBA, etc.)"),
        ("undergraduate student in biology", "Student", "Some college"), ("freelance designer", "Self-employed", "Bachelor's degree"),
        ("retired accountant", "Retired", "Bachelor's degree")]
INCOMES = ["$0-$24,999", "$25,000-$49,999", "$50,000-$74,999", "$75,000-$99,999", "$100,000-$149,999"]
BIG_FIVE = ("Extraversion", "Agreeableness", "Conscientiousness", "Emotional Stability", "Intellect")
LEVELS = ("Low", "Medium", "High", "Extremely high")
RATIONALES = {
    "search": ["I want to find a {noun} that fits what I need.", "looking for {noun}", "I need a new {noun}, so I search for it."],
    "product_link": ["This one looks promising, I want to see the details.", "good rating and price, let me check it", "I want to compare this with the others."],
    "product_option": ["I want to compare the different {dim}s.", "checking the price of this {dim}", "I prefer this {dim}."],
    "review": ["I always read reviews before I buy.", "want to see what other buyers say", "Checking the bad reviews first."],
    "filter": ["I only want well rated items in my budget.", "filter to narrow it down"],
    "purchase": ["This is the best value I found, so I buy it.", "Good enough, I'll take it.", "I'm confident about this one now."],
    "terminate": ["I need to do more research before deciding.", "Nothing here is worth the price.", "I'll come back later."],
    "quantity": ["I don't need this anymore.", "I changed my mind about this item."],
    "other": ["Maybe I want this later.", "let me see the store", "I want the coupon."],
}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


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

    @property
    def slug(self) -> str:
        return slug(self.title)


@dataclass
class Persona:
    user_id: str
    traits: dict[str, float]  # Likert answers as -2..2
    interests: list[str]
    survey: dict[str, Any]
    raw_survey: dict[str, Any]
    interview: str
    interview_processed: str


# -- personas -----------------------------------------------------------------------------------------


def _persona(rng: random.Random) -> Persona:
    user_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    traits = {key: float(rng.choice([-2, -1, 0, 1, 1, 2, 2])) for key in STATEMENTS}
    if traits["quick"] > 0:  # quick shoppers rarely also research a lot
        traits["research"] = min(traits["research"], float(rng.choice([-2, -1, 0])))
    job, employment, education = rng.choice(JOBS)
    city = rng.choice(CITIES)
    interests = rng.sample(sorted(CATEGORIES), 3)
    gender = rng.choice(["Female", "Male", "Non-binary"])
    age = rng.choice(["18-24 years old", "25-34 years old", "35-44 years old", "45-54 years old"])
    living = rng.choice(["", "Live alone", "Live together with roommate", "Live together with partner", "Live together with family"])
    big_five = {name: rng.choice(LEVELS) for name in BIG_FIVE}
    mbti = "".join(rng.choice(pair) for pair in ("IE", "NS", "TF", "JP"))
    answers = {STATEMENTS[k]: LIKERT[int(v) + 2] for k, v in traits.items()}
    survey = {
        "Demographic Information": {"Gender": gender, "Age": age, "City": city, "Education level": education,
                                    "Living situation": living, "Yearly household income or stipend": rng.choice(INCOMES),
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
    transcript = (f"Interviewer: Can you tell me a bit about yourself?\nParticipant: I live in {city}, I'm a {job}.\n"
                  f"Interviewer: How do you usually shop online?\nParticipant: I {style.replace('reads', 'read').replace('compares', 'compare').replace('buys', 'buy').replace('balances', 'balance')}.")
    return Persona(user_id, traits, interests, survey, raw, transcript, processed)


# -- catalogue ----------------------------------------------------------------------------------------


def _catalogue(rng: random.Random) -> dict[str, list[Product]]:
    catalogue: dict[str, list[Product]] = {}
    for category in sorted(CATEGORIES):
        spec = CATEGORIES[category]
        products = []
        for _ in range(24):
            noun, brand = rng.choice(spec["nouns"]), rng.choice(spec["brands"])
            title = f"{brand} {rng.choice(ADJECTIVES)} {noun} {rng.choice(PURPOSES)}"
            price = round(rng.uniform(6, 140), 2)
            dims = rng.sample(sorted(spec["options"]), k=rng.randint(1, len(spec["options"])))
            options = {d: [(v, round(price * rng.uniform(0.7, 1.3), 2)) for v in rng.sample(spec["options"][d], k=min(len(spec["options"][d]), rng.randint(2, 5)))] for d in dims}
            products.append(Product("B0" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(8)), title, category,
                                    noun, brand, price, round(rng.uniform(3.2, 4.9), 1), rng.randint(3, 25000), options))
        catalogue[category] = products
    return catalogue


# -- pages --------------------------------------------------------------------------------------------

_FOOTER = ("<footer><div><span>Conditions of Use</span><span>Privacy Notice</span><span>Consumer Health Data Privacy Disclosure</span>"
           "<span>Your Ads Privacy Choices</span></div><div>© 1996-2025, Amazon.com, Inc. or its affiliates</div></footer>")


def _header(query: str, cart_count: int) -> str:
    return (f'<header><div name="nav_bar"><a name="nav_bar.logo">amazon</a><span>Deliver to Blacksburg 24060</span>'
            f'<input name="nav_bar.search_input" type="text" placeholder="Search Amazon" value="{escape(query)}"/>'
            f'<button name="nav_bar.search_button">Go</button><a name="nav_bar.account_and_lists">Hello, sign in Account &amp; Lists</a>'
            f'<a name="nav_bar.returns_and_orders">Returns &amp; Orders</a><a name="go_to_cart">Cart {cart_count}</a></div>'
            '<div name="nav_bar.menu"><a name="nav_bar.menu.todays_deals">Today\'s Deals</a><a name="nav_bar.menu.customer_service">Customer Service</a>'
            '<a name="nav_bar.menu.gift_cards">Gift Cards</a></div></header>')


def _stars(p: Product) -> str:
    return f"<span>{p.rating} out of 5 stars</span><span>{p.reviews:,} ratings</span>"


@dataclass
class _State:
    page: str  # home, search, product, cart, checkout
    query: str = ""
    category: str = ""
    results: list[Product] = field(default_factory=list)
    page_no: int = 1
    product: Product | None = None
    selected: dict[str, str] = field(default_factory=dict)
    cart: list[Product] = field(default_factory=list)
    side_bar: bool = False
    filters: list[str] = field(default_factory=list)
    related: list[Product] = field(default_factory=list)  # the session's recommendation rails


def _url(state: _State) -> str:
    if state.page == "search":
        return f"https://www.amazon.com/s?k={state.query.replace(' ', '+')}" + (f"&page={state.page_no}" if state.page_no > 1 else "")
    if state.page == "product" and state.product:
        return f"https://www.amazon.com/{slug(state.product.title)[:40].replace('_', '-')}/dp/{state.product.asin}"
    return {"home": "https://www.amazon.com/", "cart": "https://www.amazon.com/cart", "checkout": "https://www.amazon.com/checkout/spc"}[state.page]


def _render(state: _State) -> str:
    related = state.related
    body: list[str] = [_header(state.query, len(state.cart))]
    if state.page == "home":
        body.append('<div><h2>Pick up where you left off</h2>' + "".join(
            f'<div><a name="pick_up_where_you_left_off.{p.slug}">{escape(p.title)}</a><span>${p.price}</span></div>' for p in related[:6]) + "</div>")
        body.append('<div><h2>Deals for you</h2>' + "".join(
            f'<div><a name="deals_for_you.{p.slug}">{escape(p.title)}</a>{_stars(p)}</div>' for p in related[6:12]) + "</div>")
    elif state.page == "search":
        suggestions = [f"{state.query} {w}" for w in ("for men", "for women", "waterproof", "2 pack")]
        body.append('<div name="suggested_terms">' + "".join(f'<a name="suggested_term.{slug(s)}">{escape(s)}</a>' for s in suggestions) + "</div>")
        body.append('<div name="filter"><span>Customer Reviews</span><a name="filter.customer_reviews.4_stars_up">4 Stars &amp; Up</a>'
                    '<span>Price</span>' + "".join(f'<a name="filter.price.{slug(r)}">{escape(r)}</a>' for r in ("Up to $25", "$25 to $50", "$50 to $100", "$100 & above"))
                    + '<span>Brands</span>' + "".join(f'<input type="checkbox" name="filter.brands.{slug(b)}"/><span>{escape(b)}</span>' for b in CATEGORIES[state.category]["brands"])
                    + '<a name="filter.delivery_day.get_it_by_tomorrow">Get It by Tomorrow</a></div>')
        body.append(f'<div><span>1-{len(state.results)} of over 1,000 results for "{escape(state.query)}"</span>'
                    + "".join(f'<a name="filter.applied.{slug(f)}">Clear {escape(f)}</a>' for f in state.filters) + "</div>")
        for p in state.results:
            body.append(f'<div name="search_results.{p.slug}"><a name="search_results.{p.slug}.product_image"><img alt="{escape(p.title)}"/></a>'
                        f'<a name="search_results.{p.slug}.product_detail">{escape(p.title)}</a>{_stars(p)}'
                        f'<span>${p.price}</span><span>FREE delivery {"Tomorrow" if p.price > 35 else "Fri, May 9"}</span>'
                        f'<button name="search_results.{p.slug}.add_to_cart">Add to cart</button></div>')
        body.append('<div name="pagination">' + "".join(f'<a name="pagination.{n}">{n}</a>' for n in range(1, 6))
                    + '<a name="pagination.next">Next</a></div>')
    elif state.page == "product" and state.product:
        p = state.product
        body.append(f'<div><a name="breadcrumb.{slug(p.category)}">{escape(p.category.title())}</a></div>'
                    f'<div name="image_gallery"><img alt="{escape(p.title)}"/>' + "".join(f'<button name="image_gallery.thumbnail.{i}"><img/></button>' for i in range(1, 6)) + "</div>"
                    f'<h1>{escape(p.title)}</h1><a name="visit_the_{slug(p.brand)}_store">Visit the {escape(p.brand)} Store</a>'
                    f'{_stars(p)}<a name="reviews.see_all_reviews">{p.reviews:,} ratings</a><span>${p.price}</span>'
                    f'<div><input type="checkbox" name="coupon.checkbox"/><span>Apply 10% coupon</span></div>')
        for dim, values in p.options.items():
            chosen = state.selected.get(dim, values[0][0])
            body.append(f'<div name="product_options.{dim}"><span>{dim.title()}: {escape(chosen)}</span>' + "".join(
                f'<button name="product_options.{dim}.button_list.{slug(v)}">{escape(v)} ${price}</button>' for v, price in values) + "</div>")
        body.append('<ul><li>' + "</li><li>".join([f"{p.noun.capitalize()} built for everyday use by {p.brand}.",
                                                     "Durable materials tested for long life; easy to clean and store.",
                                                     "30-day returns. Customer support by email and phone.",
                                                     f"What's in the box: 1 x {p.noun}, user manual."]) + "</li></ul>")
        body.append("<table><caption>Product details</caption>" + "".join(
            f"<tr><th>{k}</th><td>{escape(v)}</td></tr>" for k, v in (("Brand", p.brand), ("ASIN", p.asin), ("Category", p.category),
                                                                      ("Customer Reviews", f"{p.rating} out of 5 stars"),
                                                                      ("Date First Available", "January 12, 2024"),
                                                                      ("Country of Origin", "China"), ("Item Weight", "8.8 ounces"))) + "</table>")
        body.append(f'<div name="buybox"><span>${p.price}</span><span>FREE Returns</span><span>In Stock</span>'
                    '<div name="buybox.purchase_form"><select name="buybox.purchase_form.quantity"><option>1</option><option>2</option><option>3</option></select>'
                    '<button name="buybox.purchase_form.add_to_cart">Add to Cart</button><button name="buybox.purchase_form.buy_now">Buy Now</button></div>'
                    '<a name="buybox.add_to_list">Add to List</a></div>')
        body.append('<div name="reviews"><h2>Customer reviews</h2>' + "".join(f'<a name="reviews.star_filter.{n}_star">{n} star</a>' for n in (5, 4, 3, 2, 1))
                    + "<div><span>Works great, exactly as described.</span><span>Stopped working after two weeks.</span></div></div>")
        body.append('<div name="carousel"><button name="carousel.previous">Previous</button><button name="carousel.next">Next</button>' + "".join(
            f'<a name="related_to_items_you_ve_viewed.{r.slug}">{escape(r.title)}</a><span>${r.price}</span>' for r in related[:6]) + "</div>")
        body.append("<div><h2>Customers who bought this item also bought</h2>" + "".join(
            f'<div><a name="customers_also_bought.{r.slug}">{escape(r.title)}</a>{_stars(r)}<span>${r.price}</span></div>' for r in related[6:12]) + "</div>")
        if state.side_bar and state.cart:
            body.append('<div name="cart_side_bar"><span>Subtotal</span><a name="cart_side_bar.go_to_cart">Go to Cart</a>' + "".join(
                f'<a name="cart_side_bar.product_list.{c.slug}.product_image"><img alt="{escape(c.title)}"/></a>' for c in state.cart) + "</div>")
    elif state.page == "cart":
        body.append("<h1>Shopping Cart</h1>")
        for c in state.cart:
            body.append(f'<div name="active_item_list.{c.slug}"><input type="checkbox" name="active_item_list.{c.slug}.checkbox"/>'
                        f'<a name="active_item_list.{c.slug}.product_detail">{escape(c.title)}</a><span>${c.price}</span><span>In Stock</span>'
                        f'<button name="active_item_list.{c.slug}.quantity.decrease">-</button><span>1</span>'
                        f'<button name="active_item_list.{c.slug}.quantity.increase">+</button>'
                        f'<button name="active_item_list.{c.slug}.delete">Delete</button><button name="active_item_list.{c.slug}.save_for_later">Save for later</button></div>')
        if not state.cart:
            body.append("<div>Your Amazon Cart is empty</div>")
        body.append(f'<div><span>Subtotal ({len(state.cart)} items): ${sum(c.price for c in state.cart):.2f}</span>'
                    '<button name="check_out">Proceed to checkout</button></div>')
    elif state.page == "checkout":
        body.append('<h1>Checkout</h1><div name="shipping_address"><span>Delivering to Alex, 100 Main St</span><a name="shipping_address.change">Change</a></div>'
                    '<div name="payment_method"><span>Paying with Visa 1234</span><a name="payment_method.change">Change</a></div>'
                    + "".join(f"<div><span>{escape(c.title)}</span><span>${c.price}</span></div>" for c in state.cart)
                    + '<button name="place_your_order">Place your order</button>')
    return "<html><body>" + "".join(body) + _FOOTER + "</body></html>"


# -- sessions -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    kind: str  # click / input / terminate
    name: str = ""
    click_type: str = ""
    text: str = ""
    topic: str = ""  # the rationale template group


def _options(state: _State, persona: Persona, buying: bool) -> list[tuple[float, _Step]]:
    """Weighted candidate actions on the current page; the weights carry the persona."""
    t = persona.traits
    research, quick, value, fun = t["research"], t["quick"], t["value"], t["fun"]
    # The typed text is chosen when the step is taken (it depends on the page's query).
    search = (0.7 + 0.1 * fun, _Step("input", "nav_bar.search_input", topic="search"))
    nav = [(0.08, _Step("click", "go_to_cart", "other", topic="other")),
           (0.06, _Step("click", "nav_bar.returns_and_orders", "nav_bar")), (0.05, _Step("click", "nav_bar.search_button", "search"))]
    out: list[tuple[float, _Step]] = [search, *nav]
    if state.page == "home":
        out[0] = (3.0, search[1])
    elif state.page == "search":
        out += [(4.0 + quick, _Step("click", f"search_results.{p.slug}.product_detail", "product_link", topic="product_link")) for p in state.results[:4]]
        out += [(0.8, _Step("click", f"search_results.{p.slug}.product_image", "product_link", topic="product_link")) for p in state.results[4:6]]
        out += [(0.9 + 0.5 * value, _Step("click", "filter.customer_reviews.4_stars_up", "filter", topic="filter")),
                (0.4 + 0.4 * value, _Step("click", "filter.price.up_to_25", "filter", topic="filter")),
                (0.3, _Step("click", f"filter.brands.{slug(CATEGORIES[state.category]['brands'][0])}", "filter", topic="filter")),
                (0.7 + 0.3 * research, _Step("click", f"pagination.{state.page_no + 1}", "page_related")),
                (0.4, _Step("click", f"suggested_term.{slug(state.query + ' waterproof')}", "suggested_term", topic="search"))]
        if buying:
            out.append((0.3 + 0.3 * quick, _Step("click", f"search_results.{state.results[0].slug}.add_to_cart", "purchase", topic="purchase")))
    elif state.page == "product" and state.product:
        p = state.product
        for dim, values in p.options.items():
            out += [(1.3 + 0.6 * research - 0.3 * quick, _Step("click", f"product_options.{dim}.button_list.{slug(v)}", "product_option", topic=f"product_option:{dim}")) for v, _ in values]
        out += [(0.7 + 0.6 * research, _Step("click", "reviews.see_all_reviews", "review", topic="review")),
                (0.3 + 0.4 * research, _Step("click", "reviews.star_filter.1_star", "review", topic="review")),
                (0.3, _Step("click", "buybox.purchase_form.quantity", "quantity")),
                (0.4 + 0.3 * fun, _Step("click", "carousel.next", "page_related")),
                (0.15 + 0.2 * value, _Step("click", "coupon.checkbox", "other", topic="other")),
                (0.2, _Step("click", f"visit_the_{slug(p.brand)}_store", "other", topic="other")),
                (0.15 + 0.1 * t["novelty"], _Step("click", "image_gallery.thumbnail.2", "other"))]
        out += [(0.12, _Step("click", f"related_to_items_you_ve_viewed.{r.slug}", "other", topic="product_link")) for r in state.related[:3]]
        if state.side_bar and state.cart:
            out += [(1.0, _Step("click", "cart_side_bar.go_to_cart", "cart_side_bar")),
                    (0.4, _Step("click", f"cart_side_bar.product_list.{state.cart[-1].slug}.product_image", "cart_side_bar"))]
        if buying:
            out += [(1.2 + 0.8 * quick, _Step("click", "buybox.purchase_form.add_to_cart", "purchase", topic="purchase"))]
    elif state.page == "cart":
        for c in state.cart:
            out += [(1.2, _Step("click", f"active_item_list.{c.slug}.product_detail", "product_link", topic="product_link")),
                    (0.5 + 0.3 * t["overwhelmed"], _Step("click", f"active_item_list.{c.slug}.delete", "quantity", topic="quantity")),
                    (0.4, _Step("click", f"active_item_list.{c.slug}.quantity.increase", "quantity")),
                    (0.3, _Step("click", f"active_item_list.{c.slug}.checkbox", "cart_page_select")),
                    (0.3, _Step("click", f"active_item_list.{c.slug}.save_for_later", "other", topic="other"))]
        if buying and state.cart:
            out.append((1.5 + quick, _Step("click", "check_out", "purchase", topic="purchase")))
    elif state.page == "checkout":
        out += [(0.6, _Step("click", "shipping_address.change", "other")), (0.4, _Step("click", "payment_method.change", "other"))]
        if buying:
            out.append((3.0, _Step("click", "place_your_order", "purchase", topic="purchase")))
    return out


def _apply(step: _Step, state: _State, rng: random.Random, persona: Persona, catalogue: dict[str, list[Product]]) -> None:
    """Move ``state`` to the page the action leads to."""
    name = step.name
    by_slug = {p.slug: p for products in catalogue.values() for p in products}
    if step.kind == "input":
        category = state.category or rng.choice(persona.interests)
        state.page, state.category, state.query, state.page_no, state.filters = "search", category, step.text, 1, []
        state.results = rng.sample(catalogue[category], 16)
    elif name.startswith("suggested_term."):
        state.query, state.page_no = name.split(".", 1)[1].replace("_", " "), 1
        state.results = rng.sample(catalogue[state.category], 16)
    elif name.startswith("filter."):
        state.filters.append(name.split(".")[-1].replace("_", " "))
        state.results = sorted(state.results, key=lambda p: -p.rating)[: max(4, len(state.results) - 3)]
    elif name.startswith("pagination."):
        state.page_no += 1
        state.results = rng.sample(catalogue[state.category], 16)
    elif name.endswith((".product_detail", ".product_image")) or name.startswith("related_to_items_you_ve_viewed."):
        product_slug = name.split(".")[-2] if name.count(".") >= 2 and not name.startswith("related") else name.split(".")[-1]
        if name.startswith("cart_side_bar."):
            product_slug = name.split(".")[2]
        state.page, state.product, state.selected, state.side_bar = "product", by_slug[product_slug], {}, False
        state.category = state.product.category
    elif name.startswith("product_options."):
        _, dim, _, value = name.split(".", 3)
        state.selected[dim] = value.replace("_", " ")
    elif name.endswith("add_to_cart"):
        product = state.product if state.page == "product" else state.results[0]
        if product and product not in state.cart:
            state.cart.append(product)
        state.side_bar = state.page == "product"
    elif name in ("go_to_cart", "cart_side_bar.go_to_cart"):
        state.page = "cart"
    elif name.endswith(".delete"):
        state.cart = [c for c in state.cart if c.slug != name.split(".")[1]]
    elif name == "check_out":
        state.page = "checkout"


def _session_length(rng: random.Random, persona: Persona, mean_length: float) -> int:
    # Heavy-tailed like the real sessions: many short ones, a few long comparisons.
    # The factor offsets the sessions that end early for want of a purchase button (calibrated on seed 2025).
    scale = 1.2 * mean_length * (1 + 0.15 * persona.traits["research"] - 0.12 * persona.traits["quick"])
    return max(1, min(60, int(rng.expovariate(1 / (scale - 0.5)) + 1)))


def _simulate_session(rng: random.Random, persona: Persona, catalogue: dict[str, list[Product]], start: datetime,
                      mean_length: float) -> list[dict[str, Any]]:
    t = persona.traits
    buy_odds = -0.05 + 0.35 * t["quick"] - 0.25 * t["research"] + 0.15 * t["fun"] - 0.1 * t["overwhelmed"]
    buying = rng.random() < 1 / (1 + pow(2.718281828, -buy_odds))
    length = _session_length(rng, persona, mean_length)
    category = rng.choice(persona.interests)
    related = rng.sample(catalogue[category], 12)
    state = _State(page="home")
    roll = rng.random()
    if roll < 0.45 or (buying and length <= 2):
        state = _State(page="product", category=category, product=rng.choice(catalogue[category]))
    elif roll < 0.62:
        query = rng.choice(CATEGORIES[category]["nouns"])
        state = _State(page="search", category=category, query=query, results=rng.sample(catalogue[category], 16))
    elif roll < 0.75:
        state = _State(page="cart", category=category, cart=rng.sample(catalogue[category], rng.randint(1, 3)))
    state.related = related
    rows: list[dict[str, Any]] = []
    when = start
    for index in range(length):
        last = index == length - 1
        candidates = _options(state, persona, buying)
        purchases = [c for c in candidates if c[1].click_type == "purchase"]
        if last and buying and purchases:
            step = max(purchases, key=lambda c: c[0])[1]
        elif last:
            # A buying session whose page offers no purchase ends on the closest purchase-like step.
            step = _Step("terminate", topic="terminate") if not buying else _Step("click", "go_to_cart", "other")
        else:
            weights = [max(w, 0.02) for w, s in candidates if s.click_type != "purchase" or (buying and index >= length - 3)]
            pool = [s for w, s in candidates if s.click_type != "purchase" or (buying and index >= length - 3)]
            step = rng.choices(pool, weights)[0]
        if buying and last and not purchases:
            buying = False  # could not reach a purchase within its length: the session ends without one
            step = _Step("terminate", topic="terminate")
        html = _render(state)
        topic, _, dim = step.topic.partition(":")
        rationale = ""
        if topic and rng.random() < 0.12:
            noun = state.product.noun if state.product else (step.text or state.query or "item")
            rationale = rng.choice(RATIONALES[topic]).format(noun=noun, dim=dim or "option")
        text = step.text
        if step.kind == "input":
            text = rng.choice(CATEGORIES[state.category or category]["nouns"]) if not state.query or rng.random() < 0.5 else f"{state.query} {rng.choice(['cheap', 'best', 'for women', 'for men', 'set'])}"
            step = _Step("input", step.name, text=text, topic=step.topic)
        rows.append({
            "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
            "action_type": step.kind,
            "click_type": step.click_type,
            "semantic_id": step.name,
            "input_text": text,
            "url": _url(state),
            "simplified_html": html,
            "rationale": rationale,
            "page_meta": json.dumps({"title": "Amazon.com", "url": _url(state)}),
            "element_meta": json.dumps({"name": step.name, "data": {}}) if step.name else "",
            "mouse_position": json.dumps({"x": rng.randint(0, 1500), "y": rng.randint(0, 800)}) if step.kind != "terminate" else "",
            "window_size": json.dumps({"width": 1512, "height": 823}),
            "products": json.dumps([{"asin": state.product.asin, "title": state.product.title, "price": f"${state.product.price}",
                                     "quantity": 1, "options": sorted(state.selected.values())}]) if step.click_type == "purchase" and state.product else "",
            "image": "",
        })
        if step.kind != "terminate":
            _apply(step, state, rng, persona, catalogue)
        when += timedelta(seconds=rng.randint(3, 90))
    return rows


# -- the dataset --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedTables:
    users: dict[str, list[dict[str, Any]]]  # by split
    sessions: dict[str, list[dict[str, Any]]]
    actions: dict[str, list[dict[str, Any]]]


def simulate(seed: int = DEFAULT_SEED) -> SimulatedTables:
    """All rows of the simulated dataset, split by session with the real split's session counts."""
    rng = random.Random(seed)
    personas = [_persona(rng) for _ in range(SHAPE["users"])]
    catalogue = _catalogue(rng)
    n_sessions = SHAPE["train_sessions"] + SHAPE["test_sessions"]
    mean_length = (SHAPE["train_actions"] + SHAPE["test_actions"]) / n_sessions
    owners = [personas[i % len(personas)] for i in range(n_sessions)]  # every user gets sessions, some more
    rng.shuffle(owners)
    epoch = datetime(2025, 3, 1, tzinfo=timezone.utc)
    sessions: list[tuple[Persona, str, list[dict[str, Any]]]] = []
    for persona in owners:
        start = epoch + timedelta(seconds=rng.randint(0, 75 * 86400), milliseconds=rng.randint(0, 999))
        rows = _simulate_session(rng, persona, catalogue, start, mean_length)
        end = rows[-1]["timestamp"]
        session_id = f"{persona.user_id}_{rows[0]['timestamp']}_{end}"
        for i, row in enumerate(rows):
            row["session_id"] = session_id
            row["action_id"] = f"{session_id}_{i}"
        sessions.append((persona, session_id, rows))
    order = list(range(n_sessions))
    rng.shuffle(order)
    test = set(order[: SHAPE["test_sessions"]])
    tables = SimulatedTables({"train": [], "test": []}, {"train": [], "test": []}, {"train": [], "test": []})
    seen: dict[str, set[str]] = {"train": set(), "test": set()}
    for i, (persona, session_id, rows) in enumerate(sessions):
        split = "test" if i in test else "train"
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


def write_layout(root: str | Path, seed: int = DEFAULT_SEED) -> Path:
    """Write the simulated dataset under ``root/OPeRA_filtered/`` in the Hub layout; returns ``root``."""
    root = Path(root)
    tables = simulate(seed)
    base = root / "OPeRA_filtered"
    string_schema = lambda names: pa.schema([(n, pa.string()) for n in names])  # noqa: E731
    session_schema = pa.schema([("session_id", pa.string()), ("user_id", pa.string()), ("action_count", pa.int64())])
    for split in ("train", "test"):
        for part in ("user", "session"):
            (base / part / split).mkdir(parents=True, exist_ok=True)
        (base / "action").mkdir(parents=True, exist_ok=True)
        options = {"compression": "zstd", "compression_level": 9}
        pq.write_table(pa.Table.from_pylist(tables.users[split], schema=string_schema(
            ("user_id", "survey", "raw_survey", "interview_transcript", "interview_transcript_processed"))),
            base / "user" / split / f"{split}.parquet", **options)
        pq.write_table(pa.Table.from_pylist(tables.sessions[split], schema=session_schema),
                       base / "session" / split / f"{split}.parquet", **options)
        pq.write_table(pa.Table.from_pylist(tables.actions[split], schema=string_schema(ACTION_COLUMNS)),
                       base / "action" / f"{split}-00000-of-00001.parquet", **options)
    return root


def stats(data: OperaData) -> dict[str, dict[str, Any]]:
    """Per split: action-type mix, session length, purchase rate and click-type mix."""
    out: dict[str, dict[str, Any]] = {}
    for split, actions in data.actions.items():
        types: dict[str, int] = {}
        click_types: dict[str, int] = {}
        buyers: set[str] = set()
        for a in actions:
            types[a.action_type] = types.get(a.action_type, 0) + 1
            if a.action_type == "click":
                click_types[a.click_type] = click_types.get(a.click_type, 0) + 1
                if a.click_type == "purchase":
                    buyers.add(a.session_id)
        lengths = list(Counter(a.session_id for a in actions).values())
        sessions = len(data.sessions[split])
        out[split] = {
            "actions": len(actions),
            "sessions": sessions,
            "users": len({s.user_id for s in data.sessions[split]}),
            "action_types": dict(sorted(types.items())),
            "session_length": {"mean": round(mean(lengths), 2) if lengths else 0.0, "median": median(lengths) if lengths else 0,
                               "min": min(lengths, default=0), "max": max(lengths, default=0)},
            "purchase_sessions": len(buyers),
            "purchase_rate": round(len(buyers) / sessions, 3) if sessions else 0.0,
            "click_types": dict(sorted(click_types.items(), key=lambda kv: -kv[1])),
            "rationales": sum(1 for a in actions if a.rationale),
            "instances": len(actions) - len({a.session_id for a in actions}),
            "page_chars": {"median": median(len(a.simplified_html) for a in actions) if actions else 0,
                           "max": max((len(a.simplified_html) for a in actions), default=0)},
        }
    return out



if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the simulated OPeRA-format dataset in the Hub layout.")
    parser.add_argument("root", type=Path, help="output folder (OPeRA_filtered/ is created inside)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    write_layout(args.root, args.seed)
