"""Small folders in the publishers' formats, with their quirks, for MovieLens (ML-1M and
ML-10M `.dat`, ML-20M and later CSV), Book-Crossing and Last.fm (HetRec 2011 and 1K).

`FIXTURES[name](folder)` writes the files of the registered dataset `name` into
`folder` and returns the `dataset:` mapping a task needs besides `path`. Each folder has
32+ users with 7+ interactions each, spread over time so that chronological and random
splits both find history and targets. The first lines of each file are hand-written
quirky rows that tests/test_loaders_movielens_lastfm_bx.py checks cell by cell.
"""
from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Callable

N_USERS = 32
T0 = 978_300_000  # 2000-12-31, ML-1M's first days


def _item_of(user: int, k: int, n_items: int) -> int:
    """A user's k-th item: users step through the catalogue from different starts."""
    return (user * 5 + k * 3) % n_items


def _count(user: int) -> int:
    return 7 + user % 4  # 7..10 interactions


def _time(user: int, k: int) -> int:
    """User-interleaved times over about a year: every period has every user."""
    return T0 + k * 86_400 * 30 + user * 3_600


# --- MovieLens ----------------------------------------------------------------------------

ML_QUIRKY_TITLES = [
    ("Toy Story (1995)", "Animation|Children's|Comedy"),
    ("Misérables, Les (1995)", "Drama|Musical"),  # Latin-1 in ML-1M
    ("Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1963)", "Sci-Fi|War"),
    ('"Great Performances" Cats (1998)', "Musical"),
    ("City of Lost Children, The (Cité des enfants perdus, La) (1995)", "Adventure|Sci-Fi"),
]
GENRES = ["Action", "Comedy", "Drama", "Thriller", "Romance", "Sci-Fi", "Film-Noir"]
N_MOVIES = 60


def _movies() -> list[tuple[int, str, str]]:
    movies = [(i + 1, title, genres) for i, (title, genres) in enumerate(ML_QUIRKY_TITLES)]
    for i in range(len(movies), N_MOVIES):
        movies.append((i + 1, f"Movie {i + 1} ({1950 + i})", "|".join(GENRES[(i + j) % 7] for j in range(1 + i % 3))))
    return movies


def ml_ratings(half_stars: bool) -> list[tuple[int, int, float, int]]:
    """(user, movie, rating, timestamp) in file order: grouped by user, not by time (as
    in ratings.dat); user 1's two last ratings share a second (a rating burst)."""
    rows = []
    for user in range(1, N_USERS + 1):
        own = []
        for k in range(_count(user)):
            movie = _item_of(user, k, N_MOVIES) + 1
            stars = 1 + (user + k) % 5
            rating = stars - 0.5 if half_stars and (user + k) % 3 == 0 and stars > 1 else float(stars)
            own.append((user, movie, rating, _time(user, k)))
        if user == 1:
            own[-1] = own[-1][:3] + (own[-2][3],)  # a tie
        own = own[1::2] + own[0::2]  # not in time order within the user
        rows += own
    return rows


def write_ml_dat(folder: Path, ten_m: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    encoding = "utf-8" if ten_m else "latin-1"
    ratings = ml_ratings(half_stars=ten_m)
    text = "".join(f"{u}::{m}::{r:g}::{t}\n" for u, m, r, t in ratings)
    (folder / "ratings.dat").write_bytes(text.encode("ascii"))
    (folder / "movies.dat").write_bytes("".join(f"{i}::{title}::{genres}\n" for i, title, genres in _movies())
                                        .encode(encoding))
    if ten_m:
        tags = ["15::4::classic::1162160236\n", "20::4::musical::1162160300\n",
                "20::4::classic::1162160400\n", "21::2::time::travel::1162160500\n",  # '::' inside the tag
                "21::2:: ::1162160600\n"]  # an empty tag
        (folder / "tags.dat").write_text("".join(tags), encoding="utf-8")
    else:
        users = "".join(f"{u}::{'MF'[u % 2]}::{[1, 18, 25, 35, 45, 50, 56][u % 7]}::{u % 21}::{55100 + u}\n"
                        for u in range(1, N_USERS + 1))
        users = users.replace("::55103\n", "::02460-1234\n")  # ZIP+4 as published
        (folder / "users.dat").write_text(users, encoding="latin-1")


def write_ml_1m(folder: Path) -> dict:
    write_ml_dat(folder, ten_m=False)
    return {"name": "ml-1m"}


def write_ml_10m(folder: Path) -> dict:
    write_ml_dat(folder, ten_m=True)
    return {"name": "ml-10m"}


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') else text


CSV_QUIRKY = [
    ("Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
    ("American President, The (1995)", "Comedy|Drama|Romance"),  # quoted: a comma
    ('"Great Performances" Cats (1998)', "Musical"),  # quoted, quotes doubled
    ("Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Comedy|Romance"),
    ("Black Mirror", "(no genres listed)"),  # no year, no genres
]


def write_ml_csv(folder: Path, name: str) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    movies = [(i + 1, t, g) for i, (t, g) in enumerate(CSV_QUIRKY)] + _movies()[len(CSV_QUIRKY):]
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f"{i},{_csv_cell(t)},{g}\n" for i, t, g in movies), encoding="utf-8")
    ratings = ml_ratings(half_stars=True)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{m},{r:.1f},{t}\n" for u, m, r, t in ratings), encoding="utf-8")
    (folder / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n"
        "2,2,politics,1445714994\n3,2,\"funny, dark\",1445714995\n4,2,politics,1445714996\n"
        "5,3,\"\"\"meta\"\" musical\",1445714997\n", encoding="utf-8")
    (folder / "links.csv").write_text("movieId,imdbId,tmdbId\n" + "".join(
        f"{i},{i + 114708:07d},{'' if i == 5 else 862 + i}\n" for i, _, _ in movies), encoding="utf-8")
    return {"name": name}


# --- Book-Crossing ------------------------------------------------------------------------

BX_HEADER = ('"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher";"Image-URL-S";'
             '"Image-URL-M";"Image-URL-L"\n')


def _bx_urls(isbn: str) -> str:
    sizes = ("THUMBZZZ", "MZZZZZZZ", "LZZZZZZZ")
    return ";".join(f'"http://images.amazon.com/images/P/{isbn}.01.{size}.jpg"' for size in sizes)


BX_QUIRKY_BOOKS = [
    '"0195153448";"Classical Mythology";"Mark P. O. Morford";"2002";"Oxford University Press";'
    + _bx_urls("0195153448"),
    '"0393045218";"The Mummies of Urumchi";"E. J. W. Barber";"1999";"W. W. Norton &amp; Company";'
    + _bx_urls("0393045218"),
    # quotes escaped with a backslash, and a ';' (of &amp;) after them
    '"0811825590";"Peterman Rides Again: Adventures Continue with the Real \\"J. Peterman\\" Through Life &amp; '
    'the Catalog Business";"John Peterman";"2000";"John Wiley &amp; Sons";' + _bx_urls("0811825590"),
    # the author slid into the title; the other fields one to the left
    '"078946697X";"DK Readers: Creating the X-Men, How It All Began (Level 4: Proficient Readers)\\";Michael '
    'Teitelbaum";"2000";"DK Publishing Inc";"http://images.amazon.com/images/P/078946697X.01.THUMBZZZ.jpg";'
    '"http://images.amazon.com/images/P/078946697X.01.MZZZZZZZ.jpg";'
    '"http://images.amazon.com/images/P/078946697X.01.LZZZZZZZ.jpg"',
    '"3404921038";"Wie Barney es sieht.";"Mordecai Richler";"2002";"Lübbe";' + _bx_urls("3404921038"),  # Latin-1
    '"0440234743";"The Testament";"John Grisham";"0";"Dell";' + _bx_urls("0440234743"),  # year 0: unknown
]
N_BOOKS = 50


def _isbns() -> list[str]:
    quirky = [line.split(";")[0].strip('"') for line in BX_QUIRKY_BOOKS]
    return quirky + [f"{1000000000 + i:010d}" for i in range(len(quirky), N_BOOKS)]


def bx_ratings() -> list[tuple[str, str, int]]:
    """(user, ISBN, rating): 0 is an implicit interaction; every user also has 7+ explicit
    ratings (a task with implicit.min_rating 1 keeps them). The last ISBN is missing
    from BX-Books.csv."""
    isbns = _isbns() + ["0000000000"]
    rows = []
    for user in range(1, N_USERS + 1):
        for k in range(_count(user) + 2):
            rating = 0 if k % 4 == 3 else 1 + (user * 3 + k) % 10
            rows.append((str(276724 + user), isbns[_item_of(user, k, len(isbns))], rating))
    return rows


def write_book_crossing(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "BX-Book-Ratings.csv").write_bytes(('"User-ID";"ISBN";"Book-Rating"\n' + "".join(
        f'"{u}";"{i}";"{r}"\n' for u, i, r in bx_ratings())).encode("latin-1"))
    books = list(BX_QUIRKY_BOOKS) + [f'"{isbn}";"Book {isbn[-2:]}: A Novel";"Author {isbn[-2:]}";"19{isbn[-2:]}";'
                                     f'"Publisher {int(isbn[-2:]) % 5}";' + _bx_urls(isbn)
                                     for isbn in _isbns()[len(BX_QUIRKY_BOOKS):]]
    (folder / "BX-Books.csv").write_bytes((BX_HEADER + "\n".join(books) + "\n").encode("latin-1"))
    users = ['"276725";"tyler, texas, usa";NULL', '"276726";"seattle, washington, usa";"17"',
             '"276727";"münchen, bayern, germany";NULL', '"276728";"rio &amp; niterói, rio de janeiro, brazil";"33"']
    users += [f'"{276724 + u}";"city {u}, state, country";"{20 + u}"' for u in range(5, N_USERS + 1)]
    (folder / "BX-Users.csv").write_bytes(('"User-ID";"Location";"Age"\n' + "\n".join(users) + "\n").encode("latin-1"))
    return {"name": "book-crossing"}


# --- Last.fm HetRec 2011 --------------------------------------------------------------------

N_ARTISTS = 45
HETREC_MS0 = 1_230_768_000_000  # 2009-01-01 in milliseconds


def hetrec_assignments() -> list[tuple[int, int, int, int]]:
    """(userID, artistID, tagID, timestamp ms) sorted by user, artist, tag as published.
    User 2 tags artists 51..59; it tags 52 twice, the later line at the earlier time,
    and 51 and 53 at one time (one tagging session)."""
    rows = []
    for user in range(2, N_USERS + 2):
        artists = (list(range(51, 60)) if user == 2
                   else [51 + _item_of(user, k, N_ARTISTS) for k in range(_count(user))])
        for k, artist in enumerate(artists):
            stamp = HETREC_MS0 + (k * 30 * 86_400 + user * 3_600) * 1000
            rows.append((user, artist, 1 + (user + k) % 12, stamp))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    rows[2] = rows[2][:3] + (rows[0][3],)  # user 2: artist 53 tagged with 51
    rows.insert(2, (2, 52, 13, rows[1][3] - 5_000_000))  # 52 again, 5000 s before its first line
    return rows


def write_lastfm_2k(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    assignments = hetrec_assignments()
    (folder / "user_taggedartists-timestamps.dat").write_text(
        "userID\tartistID\ttagID\ttimestamp\n" + "".join(f"{u}\t{a}\t{g}\t{t}\n" for u, a, g, t in assignments))
    names = {51: "Duran Duran", 52: "Mötley Crüe", 53: '"Weird Al" Yankovic', 54: "Sigur Rós"}
    artists = [f"{a}\t{names.get(a, f'Artist {a}')}\thttp://www.last.fm/music/A{a}\thttp://userserve-ak.last.fm/{a}.jpg"
               for a in range(51, 51 + N_ARTISTS) if a != 60]  # artist 60 is tagged but unlisted
    (folder / "artists.dat").write_text("id\tname\turl\tpictureURL\n" + "\n".join(artists) + "\n", encoding="utf-8")
    tags = {1: "chillout", 2: "électronique", 3: "80s", 13: "new wave"}
    (folder / "tags.dat").write_bytes(("tagID\ttagValue\n" + "".join(
        f"{t}\t{tags.get(t, f'tag {t}')}\n" for t in range(1, 14))).encode("latin-1"))
    return {"name": "lastfm-2k"}


# --- Last.fm 1K -----------------------------------------------------------------------------

LISTEN_QUIRKS = [  # (artist MBID, artist, track MBID, track)
    ("f1b1cf71-bd35-4e99-8624-24a6e15f133a", "Deep Dish", "", "Fuck Me Im Famous (Pacha Ibiza)-09-28-2007"),
    ("a7f7df4a-77d8-4f12-8acd-5c60c93f4de8", "坂本龍一", "f7c1f8f8-b935-45ed-8fc8-7def69d92a10",
     "The Last Emperor (Theme)"),
    ("", "\"Weird Al\" Yankovic", "", "White & Nerdy"),
    ("f2fb0ff0-5679-42ec-a55c-15109ce6e320", "Sigur Rós", "1c5f7b6e-21a5-4a4c-8c4d-87ad4a4f4b8e", "Hoppípolla"),
]
N_TRACKS = 40


def lastfm_listens() -> list[tuple[str, str, str, str, str, str]]:
    """(userid, ISO time, artid, artname, traid, traname), each user's newest first."""
    rows = []
    for user in range(1, N_USERS + 1):
        own = []
        for k in range(_count(user)):
            track = _item_of(user, k, N_TRACKS)
            if track < len(LISTEN_QUIRKS):
                artid, artist, traid, name = LISTEN_QUIRKS[track]
            else:
                artid, artist = f"00000000-0000-0000-0000-{track % 7:012d}", f"Band {track % 7}"
                traid, name = ("", f"Song {track}") if track % 5 == 0 else (f"10000000-0000-0000-0000-{track:012d}",
                                                                             f"Song {track}")
            seconds = _time(user, k) + 1_200_000_000 - T0
            if user == 1 and k == _count(user) - 1:
                seconds -= 30 * 86_400  # a tie with the listen before
            stamp = _iso(seconds)
            own.append((f"user_{user:06d}", stamp, artid, artist, traid, name))
        rows += own[::-1]
    return rows


def _iso(seconds: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_lastfm_1k(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "userid-timestamp-artid-artname-traid-traname.tsv").write_text(
        "".join("\t".join(row) + "\n" for row in lastfm_listens()), encoding="utf-8")
    profiles = ["user_000001\tm\t\tJapan\tAug 13, 2006", "user_000002\tf\t\tPeru\tFeb 24, 2006",
                "user_000003\tm\t22\tUnited States\tOct 30, 2005", "user_000004\tf\t\t\tApr 26, 2006"]
    profiles += [f"user_{u:06d}\t{'mf'[u % 2]}\t{18 + u}\tCountry {u % 3}\tJan {u % 28 + 1}, 2006"
                 for u in range(5, N_USERS + 1)]
    (folder / "userid-profile.tsv").write_text("#id\tgender\tage\tcountry\tregistered\n" + "\n".join(profiles)
                                                + "\n", encoding="utf-8")
    return {"name": "lastfm-1k"}


def archive_lastfm_1k(folder: Path, archive: Path) -> Path:
    """The publisher's archive of a 1K folder: lastfm-dataset-1K/ with the files and a README."""
    (folder / "README.txt").write_text("Last.fm Dataset - 1K users\n")
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("README.txt", "userid-profile.tsv", "userid-timestamp-artid-artname-traid-traname.tsv"):
            if (folder / name).is_file():
                tar.add(folder / name, arcname=f"lastfm-dataset-1K/{name}")
    (folder / "README.txt").unlink()
    return archive


FIXTURES: dict[str, Callable[[Path], dict]] = {
    "ml-1m": write_ml_1m,
    "ml-10m": write_ml_10m,
    **{name: (lambda folder, name=name: write_ml_csv(folder, name))
       for name in ("ml-20m", "ml-25m", "ml-32m", "ml-latest", "ml-latest-small")},
    "book-crossing": write_book_crossing,
    "lastfm-2k": write_lastfm_2k,
    "lastfm-1k": write_lastfm_1k,
}
