"""Last.fm listening data, in the two releases recommender papers use.

* lastfm-hetrec: hetrec2011-lastfm-2k (Cantador, Brusilovsky & Kuflik, HetRec 2011; 1,892
  users, 17,632 artists). Tab-separated files with a header: `user_taggedartists-
  timestamps.dat` userID, artistID, tagID, timestamp (milliseconds since the epoch),
  `artists.dat` id, name, url, pictureURL (UTF-8), `tags.dat` tagID, tagValue
  (ISO-8859-1; each text file is decoded as UTF-8, else Latin-1). The listening counts
  of `user_artists.dat` carry no time, so they are not read.

  Interactions are the tag assignments, one per (user, artist): a user's first tagging of
  an artist, at the time of its earliest assignment (the later tags of the same artist
  add no new item to the sequence). This is what the sequential work on this dataset
  uses (e.g. the LastFM data of DROS and LLaRA, and RecBole-style conversions built for
  sequential models): the tagging times are the only times the release has, while
  user_artists.dat is an unordered set. Timestamps are converted to seconds; many
  assignments share one (a user tags several artists in one session): ties are broken
  by the file's line order (`row` = the order of the kept assignments in the file). No
  rating. Items: item (artist id), title (the artist's name), url, tags (up to ten of
  the tag names users gave the artist, the most given first, joined with ", "). Some
  tagged artists are missing from artists.dat: they have no title. No user table.

* lastfm-1k: lastfm-dataset-1K (Celma, "Music Recommendation and Discovery", Springer
  2010; 992 users, 2005-2009, about 19M scrobbles). `userid-timestamp-artid-artname-
  traid-traname.tsv`: tab-separated, no header, no quoting (names hold quotes and any
  other character), UTF-8 (an undecodable byte becomes U+FFFD), times ISO 8601 UTC
  ("2009-05-04T23:08:57Z"), each user's listens newest first; the MusicBrainz ids
  (artid, traid) are often empty. `userid-profile.tsv`: header `#id gender age country
  registered`, empty cells for unknown values. The folder may hold the two files, or the
  publisher's `lastfm-dataset-1K.tar.gz` itself: it is then read straight from the
  archive (nothing is unpacked).

  Interactions: every listen (repeats included), timestamp in seconds, `row` = the
  file's line order (it breaks the rare ties; note the file runs backwards in time). An
  item is a track: its MusicBrainz id (traid) when there is one, else "<artist name> —
  <track name>" (the same song without an MBID is then a different item than with one).
  Items: item, title ("<track> — <artist>"), track, artist, artist_mbid. Users: user,
  gender, age (a number, NaN when unknown), country, registered (as published, e.g.
  "Aug 13, 2006").
"""
from __future__ import annotations

import tarfile
from contextlib import contextmanager, nullcontext
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
import pandas as pd

from benchmark.data.dataset import RawDataset
from benchmark.data.datasets.formats import ALL, DataFileError, DatasetFormat, Selection
from benchmark.data.datasets.readers import (
    numeric_column,
    read_delimited,
    read_unquoted,
    read_unquoted_fast,
    required_text,
    text_encoding,
    text_or_none,
    time_from_text,
    top_tags,
    with_row_order,
)
from benchmark.data.datasets.registry import RegisteredDataset
from benchmark.data.datasets.sources import Download

# --- hetrec2011-lastfm-2k -----------------------------------------------------------------

TAGGED = "user_taggedartists-timestamps.dat"
ARTISTS = "artists.dat"
TAGS = "tags.dat"


class LastFMHetrec(DatasetFormat):
    name = "lastfm-hetrec"
    description = ("Last.fm HetRec 2011 (2K users): tab-separated user_taggedartists-timestamps.dat and "
                   "artists.dat (optional tags.dat); a user's first tagging of an artist is an interaction")
    required = (TAGGED, ARTISTS)
    optional = (TAGS,)
    time_field = f"{TAGGED}: userID, artistID, tagID, timestamp (milliseconds; a user's first tag of an artist)"

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        tagged = read_unquoted(folder / TAGGED, ["userID", "artistID", "tagID", "timestamp"], "\t",
                               numeric=("timestamp",), header=True, encoding="latin-1")
        events = pd.DataFrame({"user": tagged["userID"].str.strip(), "item": tagged["artistID"].str.strip(),
                               "timestamp": tagged["timestamp"] / 1000.0,
                               "position": np.arange(len(tagged), dtype="int64")})
        first = (events.sort_values(["timestamp", "position"], kind="stable")
                 .drop_duplicates(["user", "item"], keep="first").sort_values("position"))
        interactions = with_row_order(first.drop(columns="position"))[["user", "item", "timestamp", "row"]]

        artists_path = folder / ARTISTS
        artists = read_delimited(artists_path, ["id", "name", "url"], "\t", header=True,
                                 encoding=text_encoding(artists_path))
        items = pd.DataFrame({
            "item": required_text(artists, "id", artists_path).to_numpy(dtype=object),
            "title": text_or_none(artists["name"]),
            "url": text_or_none(artists["url"]),
        }).drop_duplicates("item").reset_index(drop=True)
        tags_path = folder / TAGS
        if tags_path.is_file():
            names = read_delimited(tags_path, ["tagID", "tagValue"], "\t", header=True,
                                   encoding=text_encoding(tags_path))
            names = names.assign(tagID=required_text(names, "tagID", tags_path)).drop_duplicates("tagID")
            tag_names = tagged["tagID"].str.strip().map(names.set_index("tagID")["tagValue"])
            best = top_tags(events["item"], tag_names.fillna(""))
            items["tags"] = text_or_none(items["item"].map(best))
        return RawDataset(name, interactions, items, None)


# --- lastfm-dataset-1K --------------------------------------------------------------------

LISTENS = "userid-timestamp-artid-artname-traid-traname.tsv"
PROFILES = "userid-profile.tsv"
ARCHIVE = "lastfm-dataset-1K.tar.gz"
LISTEN_FIELDS = ["userid", "timestamp", "artid", "artname", "traid", "traname"]
PROFILE_FIELDS = ["#id", "gender", "age", "country", "registered"]
TIME_FORMAT = "ISO8601"  # "2009-05-04T23:08:57Z"; pandas parses this form fast (an explicit "%Y...Z" is 10x slower)


def _read_tsv(source: Path | IO[bytes], label: str, fields: list[str], header: bool) -> pd.DataFrame:
    """A tab-separated file of the release as text cells, streamed (the listens are
    gigabytes), an undecodable byte as U+FFFD."""
    return read_delimited(source, fields, "\t", header=header, label=label, encoding_errors="replace")


def _listens(frame: pd.DataFrame, label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, items) of the listens table: vectorised, the items' texts built on
    each item's first listen only (the file has about 19M lines, 1M tracks)."""
    where = Path(label)
    user = required_text(frame, "userid", where)
    timestamp = time_from_text(frame, "timestamp", where, TIME_FORMAT)
    required_text(frame, "artname", where)
    traid, track, artist = frame["traid"], frame["traname"], frame["artname"]
    no_mbid = (traid.str.strip() == "").to_numpy()
    nameless = no_mbid & (track.str.strip() == "").to_numpy()
    if nameless.any():
        line = int(frame["line"].to_numpy()[nameless.argmax()])
        raise DataFileError(f"{label} line {line}: field 'traname' is empty and so is 'traid' (a truncated line?)")
    item = traid.str.strip()
    if no_mbid.any():
        item = item.where(~no_mbid, artist.str.strip() + " — " + track.str.strip())
    interactions = with_row_order(pd.DataFrame({"user": user, "item": item, "timestamp": timestamp}))
    first = ~item.duplicated().to_numpy()
    track_text = pd.Series(text_or_none(track[first]))
    artist_text = pd.Series(text_or_none(artist[first]))
    titled = track_text.notna()
    items = pd.DataFrame({
        "item": item[first].to_numpy(dtype=object),
        "title": text_or_none((track_text.where(titled, "") + " — " + artist_text).where(titled, artist_text)),
        "track": track_text.to_numpy(dtype=object),
        "artist": artist_text.to_numpy(dtype=object),
        "artist_mbid": text_or_none(frame["artid"][first]),
    })
    return interactions[["user", "item", "timestamp", "row"]], items


def _profiles(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    where = Path(label)
    return pd.DataFrame({
        "user": required_text(frame, "#id", where).to_numpy(dtype=object),
        **{c: text_or_none(frame[c]) for c in ("gender", "country", "registered")},
        "age": numeric_column(frame, "age", where, required=False).to_numpy(dtype="float64"),
    })[["user", "gender", "age", "country", "registered"]].drop_duplicates("user").reset_index(drop=True)


class LastFM1K(DatasetFormat):
    name = "lastfm-1k"
    description = ("Last.fm 1K users (Celma): userid-timestamp-artid-artname-traid-traname.tsv (optional "
                   "userid-profile.tsv), or the publisher's lastfm-dataset-1K.tar.gz holding them")
    required = (LISTENS,)
    optional = (PROFILES,)
    time_field = f"{LISTENS}: timestamp (ISO 8601, UTC)"

    def missing(self, folder: Path, selection: Selection = ALL) -> list[str]:
        absent = super().missing(folder, selection)
        return [] if absent and (folder / ARCHIVE).is_file() else absent

    def source_files(self, folder: Path, selection: Selection = ALL) -> list[Path]:
        files = super().source_files(folder, selection)
        if not any(p.name == LISTENS for p in files) and (folder / ARCHIVE).is_file():
            return [folder / ARCHIVE]
        return files

    def needs(self) -> str:
        return f"{self.name}: {LISTENS} (optional: {PROFILES}), or {ARCHIVE}"

    def read(self, folder: Path, name: str, selection: Selection = ALL) -> RawDataset:
        if (folder / LISTENS).is_file():
            def opener(base: str):
                return lambda: nullcontext((folder / base, str(folder / base)))
            has_profiles = (folder / PROFILES).is_file()
        else:
            archive = folder / ARCHIVE

            def opener(base: str):
                return lambda: _member(archive, base)
            has_profiles = True  # an archive without it reads as none
        listens = opener(LISTENS)
        with listens() as (source, label):
            frame = read_unquoted_fast(source, LISTEN_FIELDS, "\t", required=("userid", "timestamp", "artname"))
        if frame is None:  # read again by pandas' C parser, to name the line at fault
            with listens() as (source, label):
                frame = _read_tsv(source, label, LISTEN_FIELDS, header=False)
        interactions, items = _listens(frame, label)
        users = None
        if has_profiles:
            try:
                with opener(PROFILES)() as (source, label):
                    users = _profiles(_read_tsv(source, label, PROFILE_FIELDS, header=True), label)
            except _Absent:
                users = None
        return RawDataset(name, interactions, items, users)


class _Absent(DataFileError):
    pass


@contextmanager
def _member(archive: Path, base: str):
    """(the member's stream, its label) for the member of `archive` named `base` (its
    base name; nothing is unpacked, so member paths cannot point anywhere)."""
    try:
        with tarfile.open(archive, "r|gz") as tar:
            for member in tar:
                if member.isfile() and PurePosixPath(member.name).name == base:
                    yield tar.extractfile(member), f"{archive} member {member.name}"
                    return
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DataFileError(f"{archive}: not a readable .tar.gz archive ({error})") from None
    raise _Absent(f"{archive}: holds no {base}")


FORMAT_LIST = [LastFMHetrec(), LastFM1K()]

DATASET_LIST = [
    RegisteredDataset(
        name="lastfm-2k",
        format="lastfm-hetrec",
        licence="HetRec 2011 (GroupLens, Last.fm data): non-commercial research use under Last.fm's terms; "
                "cite Cantador, Brusilovsky & Kuflik (RecSys 2011)",
        source=Download("https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip"),
        homepage="https://grouplens.org/datasets/hetrec-2011/",
        description="Last.fm HetRec 2011: 1,892 users' tag assignments (with times) on 17,632 artists; "
                    "interactions are each user's first tagging of an artist",
    ),
    RegisteredDataset(
        name="lastfm-1k",
        format="lastfm-1k",
        licence="Òscar Celma (2010), data from Last.fm's API: distributed with Last.fm's permission for "
                "non-commercial use; cite Celma, Music Recommendation and Discovery (Springer, 2010)",
        source=Download("http://mtg.upf.edu/static/datasets/last.fm/lastfm-dataset-1K.tar.gz"),
        homepage="http://ocelma.net/MusicRecommendationDataset/lastfm-1K.html",
        description="Last.fm 1K: about 19M timestamped listens (2005-2009) of 992 users, tracks by MusicBrainz "
                    "id or name; users' gender, age, country",
    ),
]
