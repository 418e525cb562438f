"""Small but realistic folders in the publishers' own formats, quirks included, for the
Amazon (2014, 2018, 2023), Steam, Yelp and Goodreads loaders.

`FIXTURES[name](folder)` writes the files of the registered dataset `name` into `folder`
and returns the rest of the task's `dataset:` mapping (name and category). The records
come from the builders below (`amazon_2014(...)`, ...), so tests can compare what a loader
read with what was written. Every folder has 36+ users with 6+ interactions each over
30+ items with titles, ratings 1-5 where the source has them, and times spread over
years with the source's granularity (Amazon 2014 and Steam: days, so a user's reviews
often tie)."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import string
from pathlib import Path
from typing import Callable

DAY = 86_400
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


# --- a population with taste: users of three groups prefer their group's items -----------

def population(seed: int, n_users: int, n_items: int, per_user: tuple[int, int] = (6, 12),
               first_day: str = "2009-01-01", span_days: int = 1600, tie_share: float = 0.2,
               min_item: int = 5) -> list[dict]:
    """(user, item, rating, day) tuples as dicts, per user in time order: each user
    starts on a random day and steps 0 (a tie: same day) to 60 days per interaction;
    three quarters of a user's items come from its group (rated 3-5), the rest from
    anywhere (rated 1-4 unless of its group). Every item gets at least `min_item` interactions (5-core)."""
    rng = random.Random(seed)
    start = (dt.date.fromisoformat(first_day) - dt.date(1970, 1, 1)).days
    groups = [list(range(g, n_items, 3)) for g in range(3)]
    rows: list[dict] = []
    for user in range(n_users):
        own = groups[user % 3][:]
        rng.shuffle(own)
        count = min(rng.randint(*per_user), n_items)
        items = own[:count - max(1, count // 4)]  # three quarters from the user's group
        while len(items) < count:
            extra = rng.randrange(n_items)
            if extra not in items:
                items.append(extra)
        day = start + rng.randrange(span_days - 400)
        for item in items:
            day += 0 if rng.random() < tie_share else rng.randint(1, 60)
            liked = item % 3 == user % 3
            rating = rng.choice([3, 4, 5, 5, 5]) if liked else rng.choice([1, 2, 2, 3, 4])
            rows.append({"user": user, "item": item, "rating": rating, "day": day})
    counts = {i: 0 for i in range(n_items)}
    for row in rows:
        counts[row["item"]] += 1
    for item in range(n_items):  # top up items below the core
        user = item % n_users
        while counts[item] < min_item:
            if not any(r["user"] == user and r["item"] == item for r in rows):
                last = max(r["day"] for r in rows if r["user"] == user)
                rows.append({"user": user, "item": item, "rating": rng.randint(1, 5), "day": last + rng.randint(0, 9)})
                counts[item] += 1
            user = (user + 1) % n_users
    return sorted(rows, key=lambda r: (r["user"], r["day"]))


def _code(rng: random.Random, length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _ids(rng: random.Random, count: int, make: Callable[[random.Random], str]) -> list[str]:
    seen: list[str] = []
    while len(seen) < count:
        value = make(rng)
        if value not in seen:
            seen.append(value)
    return seen


def _gz_lines(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write("".join(line + "\n" for line in lines))


def _lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def py2_repr(value) -> str:
    """A value as Python 2 wrote it with repr: u'...' strings (non-ASCII escaped)."""
    if isinstance(value, str):
        return "u" + ascii(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py2_repr(k)}: {py2_repr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(py2_repr(v) for v in value) + "]"
    return repr(value)


# --- Amazon 2014 ---------------------------------------------------------------------------

BEAUTY_TITLES = [
    "Maybelline New York Great Lash Washable Mascara, Blackest Black",
    "L'Oreal Paris Voluminous Original Mascara",  # repr writes it in double quotes
    'Neutrogena "Hydro Boost" Water Gel',  # repr keeps single quotes
    "Burt's Bees \"Original\" Beeswax Lip Balm",  # both quotes: repr escapes \'
    "Crème de la Mer Moisturizing Cream",  # written the Python 2 way, u'Cr\xe8me ...'
    "OPI Nail Lacquer, Big Apple Red",
    "CeraVe Moisturizing Cream, 16 oz",
    "Olay Regenerist Micro-Sculpting Cream",
    "Revlon One-Step Hair Dryer & Volumizer",
    "e.l.f. Studio Flawless Finish Foundation",
    "Clinique Dramatically Different Moisturizing Lotion+",
    "Aveeno Positively Radiant Daily Moisturizer SPF 15",
    "Bioré Deep Pore Charcoal Cleanser",
    "Dove Beauty Bar, White, 4 oz, 6 Bar",
    "Essie Nail Polish, Ballet Slippers",
    "Garnier Fructis Sleek & Shine Conditioner",
    "Hot Tools 1\" Gold Curling Iron",
    "Jergens Natural Glow Daily Moisturizer",
    "Kiehl's Ultra Facial Cream",
    "Lancôme Hypnôse Drama Mascara",
    "Maybelline Fit Me Matte + Poreless Foundation",
    "NARS Blush, Orgasm",
    "Nivea Creme, 13.5 oz Jar",
    "Pantene Pro-V Daily Moisture Renewal Shampoo",
    "Physicians Formula Murumuru Butter Bronzer",
    "Rimmel London Stay Matte Pressed Powder",
    "Sally Hansen Hard as Nails",
    "St. Ives Fresh Skin Apricot Scrub",
    "Tweezerman Slant Tweezer",
    "Urban Decay Naked Eyeshadow Palette",
    "Vaseline Intensive Care Lotion",
    "Yes To Carrots Cleanser",
    "Zoya Nail Polish, Purity",
]
BEAUTY_PATHS = [["Beauty", "Makeup", "Eyes", "Mascara"], ["Beauty", "Skin Care", "Face", "Creams & Moisturizers"],
                ["Beauty", "Hair Care", "Shampoo & Conditioner"], ["Beauty", "Makeup", "Nails", "Nail Polish"],
                ["Beauty", "Tools & Accessories", "Hair Dryers"]]
NO_TITLE = 3  # the last items of the catalogue have no title in the metadata, as many Amazon products


def amazon_2014(category: str = "Beauty", seed: int = 2014, n_users: int = 48, n_items: int = 36
                ) -> tuple[list[dict], list[dict]]:
    """(reviews in file order, metadata records) of a 5-core category file."""
    rng = random.Random(seed)
    users = _ids(rng, n_users, lambda r: "A" + _code(r, 13))
    # ASINs, some ISBN-like with leading zeros
    asins = _ids(rng, n_items, lambda r: ("0" + _code(r, 9, string.digits)) if r.random() < 0.2
                 else "B00" + _code(r, 7))
    names = ["J. McDonald", "Zoë \"makeup junkie\"", "Amazon Customer", "K. Smith"]
    reviews = []
    for row in population(seed, n_users, n_items):
        day = dt.date(1970, 1, 1) + dt.timedelta(days=row["day"])
        review = {"reviewerID": users[row["user"]], "asin": asins[row["item"]]}
        if row["user"] % 7:  # some reviewers have no name
            review["reviewerName"] = names[row["user"] % len(names)]
        review |= {"helpful": [row["item"] % 3, row["item"] % 5], "reviewText": f"Review {row['item']} – fine.",
                   "overall": float(row["rating"]), "summary": "Nice", "unixReviewTime": row["day"] * DAY,
                   "reviewTime": day.strftime("%m %d, %Y")}
        reviews.append(review)
    reviews.sort(key=lambda r: r["asin"])  # the files come grouped by product
    titles = BEAUTY_TITLES if category == "Beauty" else [f"{category} product {i}" for i in range(n_items)]
    meta = []
    for index, asin in enumerate(asins):
        record = {"asin": asin}
        if index < n_items - NO_TITLE:
            record["title"] = titles[index % len(titles)]
        record |= {"price": round(3 + index * 1.25, 2), "imUrl": f"http://ecx.images-amazon.com/images/I/{asin}.jpg",
                   "related": {"also_bought": asins[index + 1:index + 3], "bought_together": asins[:1]},
                   "salesRank": {category: 1000 + index}, "categories": [BEAUTY_PATHS[index % 5]]}
        if index % 4 == 0:
            record["categories"].append(["Beauty", "Gift Sets"])
        if index % 3:
            record["brand"] = titles[index % len(titles)].split(" ")[0]
        if index % 6 == 5:
            record["description"] = "Apply daily.\nFor all skin types."
        if index % 9 == 8:
            del record["price"]  # products without a price
        meta.append(record)
    meta.append({"asin": "B00NOTREVD", "title": "Never reviewed", "categories": [["Beauty"]]})
    return reviews, meta


def write_amazon_2014(folder: Path, category: str = "Beauty", gz: bool = True, **kwargs) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    reviews, meta = amazon_2014(category, **kwargs)
    lines = [json.dumps(r, ensure_ascii=False) for r in reviews]
    meta_lines = []
    for record in meta:
        line = repr(record)  # the publisher's metadata: Python literals
        if record.get("title", "").startswith("Crème"):
            line = line.replace(repr(record["title"]), "u" + ascii(record["title"]))
        meta_lines.append(line)
    if gz:
        _gz_lines(folder / f"reviews_{category}_5.json.gz", lines)
        _gz_lines(folder / f"meta_{category}.json.gz", meta_lines)
    else:
        _lines(folder / f"reviews_{category}_5.json", lines)
        _lines(folder / f"meta_{category}.json", meta_lines)
    return {"name": "amazon-2014", "category": category}


# --- Amazon 2018 ---------------------------------------------------------------------------

LUXURY_TITLES = [
    '<span class="a-size-medium">La Roche-Posay Toleriane &amp; Double Repair</span>',
    "Crabtree &amp; Evelyn Hand Therapy",
    "Philosophy Purity Made Simple Cleanser",
    "<b>Elizabeth Arden</b> Eight Hour Cream",
    "Lancôme Rénergie Lift Multi-Action",
    "Kiehl&#39;s Creamy Eye Treatment with Avocado",
    "Clarins Double Serum",
    "Estée Lauder Advanced Night Repair",
    "Shiseido Benefiance WrinkleResist24",
    "Caudalie Beauty Elixir",
]


def amazon_2018(category: str = "Luxury_Beauty", seed: int = 2018, n_users: int = 40, n_items: int = 32
                ) -> tuple[list[dict], list[dict]]:
    """(5-core reviews in file order, metadata records, one of them twice)."""
    rng = random.Random(seed)
    users = _ids(rng, n_users, lambda r: "A" + _code(r, 12))
    asins = _ids(rng, n_items, lambda r: "B0" + _code(r, 8))
    reviews = []
    for row in population(seed, n_users, n_items, first_day="2012-06-01", tie_share=0.1):
        day = dt.date(1970, 1, 1) + dt.timedelta(days=row["day"])
        review = {"overall": float(row["rating"]), "verified": bool(row["item"] % 2),
                  "reviewTime": f"{day.month:02d} {day.day}, {day.year}", "reviewerID": users[row["user"]],
                  "asin": asins[row["item"]], "reviewerName": f"Reviewer {row['user']}",
                  "reviewText": "Lovely.", "summary": "Five Stars", "unixReviewTime": row["day"] * DAY}
        if row["item"] % 4 == 0:
            review["vote"] = "1,234" if row["item"] == 0 else str(row["item"])
        if row["item"] % 5 == 0:
            review["style"] = {"Size:": " 1.7 oz"}
        reviews.append(review)
    rng.shuffle(reviews)
    meta = []
    for index, asin in enumerate(asins):
        meta.append({
            "category": ["Luxury Beauty", "Skin Care &amp; Body", "Face"][:1 + index % 3],
            "tech1": "", "description": [f"<p>Step {index}: apply &amp; enjoy.</p>", "<br>Dermatologist tested"],
            "fit": "", "title": LUXURY_TITLES[index % len(LUXURY_TITLES)] + ("" if index < 10 else f" No. {index}"),
            "also_buy": asins[:2], "brand": "Crabtree &amp; Evelyn" if index % 10 == 1 else f"Brand {index % 6}",
            "feature": ["<li>Paraben free</li>"] if index % 2 else [],
            "rank": f"{1000 + index:,} in Beauty & Personal Care (",
            "also_view": [], "main_cat": ('<img src="https://images-na.ssl-images-amazon.com/images/G/01/nav2/'
                                          'luxury._CB485935553_.png" class="nav-categ-image" alt="Luxury Beauty"/>'
                                          if index % 3 == 0 else "Luxury Beauty"),
            "similar_item": "", "date": "", "price": ["$24.99", "", "$1,299.00", "$5.99 - $9.99"][index % 4],
            "asin": asin, "imageURL": [], "imageURLHighRes": [],
        })
    meta.insert(5, dict(meta[2]))  # the 2018 metadata lists some products twice
    return reviews, meta


def write_amazon_2018(folder: Path, category: str = "Luxury_Beauty") -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    reviews, meta = amazon_2018(category)
    _gz_lines(folder / f"{category}_5.json.gz", [json.dumps(r) for r in reviews])
    _gz_lines(folder / f"meta_{category}.json.gz", [json.dumps(m) for m in meta])
    return {"name": "amazon-2018", "category": category}


def amazon_2018_ratings(category: str = "Video_Games") -> tuple[list[tuple[str, str, float, int]], list[dict]]:
    """(item, user, rating, timestamp) rows of the ratings-only CSV, and metadata."""
    reviews, meta = amazon_2018(category, seed=2019, n_users=44, n_items=34)
    rows = [(r["asin"], r["reviewerID"], r["overall"], r["unixReviewTime"]) for r in reviews]
    for record in meta:
        record["title"] = record["title"].replace("Luxury", "Game")
    return rows, meta


def write_amazon_2018_ratings(folder: Path, category: str = "Video_Games") -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rows, meta = amazon_2018_ratings(category)
    _lines(folder / f"{category}.csv", [f"{item},{user},{rating},{time}" for item, user, rating, time in rows])
    _gz_lines(folder / f"meta_{category}.json.gz", [json.dumps(m) for m in meta])
    return {"name": "amazon-2018-ratings", "category": category}


# --- Amazon 2023 ---------------------------------------------------------------------------

def amazon_2023(category: str = "All_Beauty", seed: int = 2023, n_users: int = 40, n_items: int = 30
                ) -> tuple[list[dict], list[dict]]:
    """(reviews in file order, metadata). Items are parent_asin; a third of the products
    are reviewed under a variant asin. Timestamps in milliseconds."""
    rng = random.Random(seed)
    users = _ids(rng, n_users, lambda r: "AE" + _code(r, 26))
    parents = _ids(rng, n_items, lambda r: "B0" + _code(r, 8))
    reviews = []
    for row in population(seed, n_users, n_items, first_day="2018-01-01", tie_share=0.0):
        parent = parents[row["item"]]
        millis = row["day"] * DAY * 1000 + rng.randrange(DAY * 1000)
        reviews.append({"rating": float(row["rating"]), "title": "Works great", "text": "Smells nice.\nWould buy.",
                        "images": [] if row["item"] % 5 else [{"small_image_url": "https://m.media-amazon.com/a.jpg"}],
                        "asin": parent if row["item"] % 3 else "B1" + parent[2:],  # a variant of the parent
                        "parent_asin": parent, "user_id": users[row["user"]], "timestamp": millis,
                        "helpful_vote": row["item"] % 4, "verified_purchase": bool(row["user"] % 2)})
    meta = []
    for index, parent in enumerate(parents):
        meta.append({
            "main_category": "All Beauty", "title": f"{BEAUTY_TITLES[index]} (2023 edition)",
            "average_rating": 4.0 + index % 10 / 10, "rating_number": 10 + index,
            "features": ["Gentle formula", "Fragrance free"] if index % 2 else [],
            "description": ["For all skin types."] if index % 3 else [],
            "price": None if index % 4 == 0 else ("None" if index == 1 else 9.99 + index),
            "images": [{"thumb": "https://m.media-amazon.com/t.jpg", "variant": "MAIN"}], "videos": [],
            "store": f"Store {index % 5}", "categories": ["Beauty & Personal Care", "Skin Care"] if index % 2 else [],
            "details": {"Brand": f"Brand {index % 5}"} if index % 2 else {"Item Weight": "2.38 Pounds", "UPC": "6173"},
            "parent_asin": parent, "bought_together": None,
        })
    return reviews, meta


def write_amazon_2023(folder: Path, category: str = "All_Beauty") -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    reviews, meta = amazon_2023(category)
    _lines(folder / f"{category}.jsonl", [json.dumps(r) for r in reviews])
    _gz_lines(folder / f"meta_{category}.jsonl.gz", [json.dumps(m) for m in meta])
    return {"name": "amazon-2023", "category": category}


def write_amazon_2023_splits(folder: Path, category: str = "All_Beauty") -> dict[str, list[tuple]]:
    """The publisher's 5core/last_out_w_his files from the fixture's reviews: per user,
    the latest review is test, the one before valid, the rest train; header
    user_id,parent_asin,rating,timestamp,history (space-separated earlier items)."""
    reviews, _ = amazon_2023(category)
    by_user: dict[str, list[dict]] = {}
    for review in reviews:
        by_user.setdefault(review["user_id"], []).append(review)
    parts: dict[str, list[tuple]] = {"train": [], "valid": [], "test": []}
    for user, rows in by_user.items():
        rows = sorted(rows, key=lambda r: r["timestamp"])
        for index, row in enumerate(rows):
            part = "test" if index == len(rows) - 1 else "valid" if index == len(rows) - 2 else "train"
            history = " ".join(r["parent_asin"] for r in rows[:index][-50:])
            parts[part].append((user, row["parent_asin"], row["rating"], row["timestamp"], history))
    for part, rows in parts.items():
        _lines(folder / f"{category}.{part}.csv", ["user_id,parent_asin,rating,timestamp,history"]
               + [f"{u},{i},{r},{t},{h}" for u, i, r, t, h in rows])
    return parts


# --- Steam ---------------------------------------------------------------------------------

GAMES = ["Lost Summoner Kitty", "Counter-Strike", "Dota 2", "Portal 2", "Terraria", "Stardew Valley",
         "The Witcher® 3: Wild Hunt", "Garry's Mod", "Rocket League", "Undertale", "Half-Life 2",
         "Left 4 Dead 2", "Don't Starve", "Fallout: New Vegas", "Civilization V", "Skyrim",
         "FTL: Faster Than Light", "Hollow Knight", "Celeste", "Rimworld", "Factorio", "Subnautica",
         "Cities: Skylines", "Braid", "Limbo", "Inside", "Bastion", "Transistor", "Hades", "Dead Cells",
         "Slay the Spire", "Into the Breach", "Papers, Please", "Oxenfree"]


def steam(seed: int = 2018, n_users: int = 40) -> tuple[list[dict], list[dict]]:
    """(reviews in file order, games). A quarter of the reviewers have a user_id; the
    others only a username. Dates are days."""
    rng = random.Random(seed)
    names = _ids(rng, n_users, lambda r: rng.choice(["Chaos Syren", "Zoë", "Jack's", "xXx", "Player"]) + " "
                 + _code(r, 4, string.ascii_lowercase))
    ids = [str(76561197960265728 + rng.randrange(10**9)) for _ in range(n_users)]
    game_ids = _ids(rng, len(GAMES), lambda r: str(r.randrange(10_000, 800_000)))
    reviews = []
    for row in population(seed, n_users, len(GAMES), first_day="2011-01-01", tie_share=0.25):
        review = {"username": names[row["user"]], "hours": round(0.1 + row["item"] * 3.7, 1),
                  "products": 10 + row["user"], "product_id": game_ids[row["item"]], "page_order": row["item"] % 10,
                  "date": (dt.date(1970, 1, 1) + dt.timedelta(days=row["day"])).isoformat(),
                  "text": f"{GAMES[row['item']]} is 'great'", "early_access": row["item"] % 7 == 0, "page": 1}
        if row["user"] % 4 == 0:
            review["user_id"] = ids[row["user"]]
        if row["item"] % 6 == 0:
            review["compensation"] = "Product received for free"
        if row["item"] % 5 == 0:
            review["found_funny"] = 1 + row["item"] % 3
        reviews.append(review)
    rng.shuffle(reviews)
    games = []
    for index, (game_id, title) in enumerate(zip(game_ids, GAMES)):
        game = {"publisher": f"Publisher {index % 4}", "genres": ["Action", "Indie"][:1 + index % 2],
                "app_name": title, "title": title, "url": f"http://store.steampowered.com/app/{game_id}/",
                "release_date": f"20{10 + index % 9}-0{1 + index % 9}-1{index % 10}",
                "tags": ["Indie", "Singleplayer", "Great Soundtrack"][:1 + index % 3],
                "reviews_url": f"http://steamcommunity.com/app/{game_id}/reviews/?browsefilter=mostrecent&p=1",
                "specs": ["Single-player", "Steam Achievements"][:1 + index % 2],
                "price": "Free To Play" if index % 8 == 2 else round(4.99 + index, 2), "early_access": False,
                "id": game_id, "developer": f"Studio {index % 5}"}
        if index == 3:
            del game["app_name"]  # a few games only have a title
        games.append(game)
    games.append({"publisher": "Nobody", "app_name": "No id", "title": "No id", "price": 1.99})  # no id: skipped
    return reviews, games


def write_steam(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    reviews, games = steam()
    _gz_lines(folder / "steam_reviews.json.gz", [py2_repr(r) for r in reviews])
    _gz_lines(folder / "steam_games.json.gz", [py2_repr(g) for g in games])
    return {"name": "steam"}


# --- Yelp ----------------------------------------------------------------------------------

BUSINESSES = ["Oskar Blues Taproom", "Flying Elephants at PDX", "The Reclaimory", "Bubba Gump Shrimp Co.",
              "Kings Theatre", "Joe's Pizza", "Café Du Monde", "Tacos El Gordo", "Pho 75", "Zahav",
              "Franklin Barbecue", "Lula Cafe", "Mama's Fish House", "Katz's Delicatessen", "Hattie B's",
              "Sushi Nakazawa", "Din Tai Fung", "Versailles", "Commander's Palace", "Pizzeria Bianco",
              "Girl & the Goat", "Prince's Hot Chicken", "Gray's Papaya", "Canlis", "Blue Bottle Coffee",
              "Tartine Bakery", "Voodoo Doughnut", "Pike Place Chowder", "Salt & Straw", "Ruth's Chris",
              "Lou Malnati's", "Shake Shack"]


def yelp(seed: int = 2004, n_users: int = 38) -> tuple[list[dict], list[dict], list[dict]]:
    """(reviews in file order, businesses, users)."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "-_"
    users = _ids(rng, n_users, lambda r: _code(r, 22, alphabet))
    businesses = _ids(rng, len(BUSINESSES), lambda r: _code(r, 22, alphabet))
    reviews = []
    for row in population(seed, n_users, len(BUSINESSES), first_day="2012-01-01", tie_share=0.05):
        moment = EPOCH + dt.timedelta(days=row["day"], seconds=rng.randrange(DAY))
        reviews.append({"review_id": _code(rng, 22, alphabet), "user_id": users[row["user"]],
                        "business_id": businesses[row["item"]], "stars": float(row["rating"]),
                        "useful": row["item"] % 3, "funny": 0, "cool": row["user"] % 2,
                        "text": "Great \"food\", friendly staff.\n\nWill be back!",
                        "date": moment.strftime("%Y-%m-%d %H:%M:%S")})
    rng.shuffle(reviews)
    items = []
    for index, (business, name) in enumerate(zip(businesses, BUSINESSES)):
        items.append({"business_id": business, "name": name, "address": f"{index} Main St", "city": "Boulder",
                      "state": "CO", "postal_code": "80302", "latitude": 40.0 + index / 100,
                      "longitude": -105.28, "stars": 3.5 + index % 3 / 2, "review_count": 5 + index, "is_open": 1,
                      "attributes": None if index % 7 == 6 else {
                          "WiFi": "u'free'" if index % 2 else "'no'", "RestaurantsTableService": "True",
                          "BusinessParking": "{'garage': False, 'street': True}"},
                      "categories": "Gastropubs, Food, Beer Gardens, Restaurants, Bars" if index % 2
                      else "Restaurants, Pizza",
                      "hours": {"Monday": "11:0-23:0"}})
    people = []
    for index, user in enumerate(users):
        people.append({"user_id": user, "name": f"Walker {index}", "review_count": 10 + index,
                       "yelping_since": f"20{10 + index % 8}-01-25 16:47:26", "useful": index, "funny": 0,
                       "cool": 1, "elite": "2012,2013" if index % 5 == 0 else "",
                       "friends": ", ".join(users[:5]), "fans": index % 4, "average_stars": 3.5 + index % 3 / 10,
                       "compliment_hot": 1})
    return reviews, items, people


def write_yelp(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    reviews, items, people = yelp()
    compact = {"separators": (",", ":"), "ensure_ascii": False}
    _lines(folder / "yelp_academic_dataset_review.json", [json.dumps(r, **compact) for r in reviews])
    _lines(folder / "yelp_academic_dataset_business.json", [json.dumps(b, **compact) for b in items])
    _lines(folder / "yelp_academic_dataset_user.json", [json.dumps(u, **compact) for u in people])
    return {"name": "yelp"}


# --- Goodreads -----------------------------------------------------------------------------

POEMS = ["Leaves of Grass", "The Waste Land", "Ariel", "Milk and Honey", "The Sun and Her Flowers",
         "Where the Sidewalk Ends", "Howl and Other Poems", "The Prophet", "Odes", "The Iliad",
         "Paradise Lost", "The Divine Comedy", "Beowulf", "Selected Poems", "Love Poems",
         "Devotions", "Crush", "Citizen: An American Lyric", "Night Sky with Exit Wounds", "Felon",
         "Don't Call Us Dead", "Whereas", "Bright Dead Things", "Life on Mars", "Deaf Republic",
         "Postcolonial Love Poem", "Wade in the Water", "The Carrying", "Calling a Wolf a Wolf",
         "The Tradition", "Feeld", "Obit"]


def goodreads_date(moment: dt.datetime, offset_hours: int) -> str:
    local = moment.astimezone(dt.timezone(dt.timedelta(hours=offset_hours)))
    return local.strftime("%a %b %d %H:%M:%S %z %Y")


def goodreads(genre: str = "poetry", seed: int = 2017, n_users: int = 40) -> tuple[list[dict], list[dict]]:
    """(interactions in file order, books). Ratings 0 (shelved, no stars) to 5; dates
    with the reviewer's zone; a few rows have no date_added."""
    rng = random.Random(seed)
    users = _ids(rng, n_users, lambda r: _code(r, 32, "0123456789abcdef"))
    books = _ids(rng, len(POEMS), lambda r: str(r.randrange(1, 40_000_000)))
    interactions = []
    for index, row in enumerate(population(seed, n_users, len(POEMS), first_day="2010-06-01", tie_share=0.0)):
        added = EPOCH + dt.timedelta(days=row["day"], seconds=rng.randrange(DAY))
        updated = added + dt.timedelta(days=rng.randrange(0, 400))
        offset = -7 if index % 3 else -8
        rating = 0 if index % 5 == 4 else row["rating"]
        interactions.append({
            "user_id": users[row["user"]], "book_id": books[row["item"]],
            "review_id": _code(rng, 32, "0123456789abcdef"),
            "is_read": rating > 0, "rating": rating, "review_text_incomplete": "",
            "date_added": "" if index % 41 == 40 else goodreads_date(added, offset),
            "date_updated": goodreads_date(updated if index % 41 != 40 else added, offset),
            "read_at": goodreads_date(updated, offset) if rating else "", "started_at": ""})
    rng.shuffle(interactions)
    records = []
    for index, (book, title) in enumerate(zip(books, POEMS)):
        series = index % 6 == 0
        records.append({
            "isbn": "", "text_reviews_count": str(index), "series": ["12345"] if series else [], "country_code": "US",
            "language_code": "eng" if index % 2 else "", "popular_shelves": [
                {"count": "120", "name": "to-read"}, {"count": "40", "name": "poetry"},
                {"count": "12", "name": "favorites"}, {"count": "3", "name": "classics"},
                {"count": "2", "name": "owned"}, {"count": "1", "name": "library"}],
            "asin": "", "is_ebook": "false", "average_rating": "4.12", "kindle_asin": "", "similar_books": [],
            "description": f"A collection of poems, #{index}." if index % 4 else "", "format": "Paperback",
            "link": f"https://www.goodreads.com/book/show/{book}",
            "authors": [{"author_id": str(1000 + index), "role": ""}]
            + ([{"author_id": "77", "role": "Translator"}] if index % 5 == 0 else []),
            "publisher": "" if index % 3 == 0 else "Penguin", "num_pages": str(64 + index) if index % 4 else "",
            "publication_day": "", "isbn13": "", "publication_month": "",
            "edition_information": "", "publication_year": str(1990 + index) if index % 7 else "",
            "url": f"https://www.goodreads.com/book/show/{book}", "image_url": "https://images.gr-assets.com/x.jpg",
            "book_id": book, "ratings_count": "3", "work_id": str(5_000_000 + index),
            "title": f"{title} (The Poets, #{index % 3 + 1})" if series else title, "title_without_series": title})
    return interactions, records


def write_goodreads(folder: Path, genre: str = "poetry") -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    interactions, books = goodreads(genre)
    _gz_lines(folder / f"goodreads_interactions_{genre}.json.gz", [json.dumps(i) for i in interactions])
    _gz_lines(folder / f"goodreads_books_{genre}.json.gz", [json.dumps(b) for b in books])
    return {"name": "goodreads", "category": genre}


FIXTURES: dict[str, Callable[[Path], dict]] = {
    "amazon-2014": write_amazon_2014,
    "amazon-2018": write_amazon_2018,
    "amazon-2018-ratings": write_amazon_2018_ratings,
    "amazon-2023": write_amazon_2023,
    "steam": write_steam,
    "yelp": write_yelp,
    "goodreads": write_goodreads,
}
