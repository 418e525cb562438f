"""The registered formats and datasets. A new source is one entry here (plus its format's
reader when the format is new); see docs/task_guide.md, "Adding a dataset"."""
from __future__ import annotations

from benchmark.data.datasets.atomic import RecBoleAtomic
from benchmark.data.datasets.registry import RegisteredDataset, register_dataset, register_format
from benchmark.data.datasets.sources import AssetSource

register_format(RecBoleAtomic())

register_dataset(RegisteredDataset(
    name="ml-100k",
    format="recbole-atomic",
    source=AssetSource("ml-100k"),
    licence="MovieLens 100K (GroupLens Research, University of Minnesota): research use, cite "
            "Harper & Konstan (2015); may not be redistributed, no commercial use without permission",
))
