"""The CTR family: a model predicts click probabilities for (user, item) rows with
feature fields; labels come from a rating threshold and stay with the harness."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from benchmark.data.splits import TEST, VALID
from benchmark.data.views import LabelledRows, TaskViews, catalog_and_training, feature_table, labelled, rows_hash, \
    sample_rows
from benchmark.families.base import TaskFamily

if TYPE_CHECKING:
    from benchmark.api import Recommender, TrainData
    from benchmark.data import PreparedData
    from benchmark.scoring import Evaluation
    from benchmark.tasks.schema import TaskSpec


class CTR(TaskFamily):
    name = "ctr"
    title = "CTR"
    unit = "rows"
    split_methods = ("global_time",)
    capabilities = ("predict",)
    contract_task = "contract-ctr.yaml"
    needs_ctr_section = True

    def build_views(self, task: "TaskSpec", prepared: "PreparedData") -> TaskViews:
        from benchmark.api import TrainData

        catalog, train_rows, part = catalog_and_training(prepared)
        dataset = prepared.dataset
        features = feature_table(task, prepared)
        validation, test = (labelled(prepared.sequence, part == p, features) for p in (VALID, TEST))
        if task.ctr.test_sample is not None:
            test = sample_rows(test, task.ctr.test_sample, train_rows["user_id"].to_numpy(), dataset.n_users)
        fields = task.ctr.user_features + task.ctr.item_features
        train = TrainData(train_rows.merge(features, on=["user_id", "item_id"], how="left"),
                          dataset.n_users, catalog, users=dataset.users.copy(), feature_fields=fields)
        return TaskViews(train, validation, test)

    def run_tags(self, task: "TaskSpec", views: TaskViews) -> dict[str, str]:
        return {"test_rows_hash": rows_hash(views.test)} if task.ctr.test_sample is not None else {}

    def evaluate_part(self, call: Callable, part: LabelledRows, task: "TaskSpec", train: "TrainData", name: str,
                      label: str, show_progress: bool = False) -> "Evaluation":
        from benchmark.scoring import predict_rows

        return predict_rows(call, part, task, train, name, label, show_progress)

    def test_call(self, model: "Recommender", train: "TrainData", task: "TaskSpec") -> Callable:
        return model.predict
