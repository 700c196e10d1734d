"""plots.py: what each figure draws (titles, axis labels, curves, tick labels, cell texts) and that its PNG is
written whole."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from qa_transfer.core.plots import (
    loss_curve_title,
    plot_confusion_matrix,
    plot_heatmap,
    plot_loss_curve,
    plot_overlap_buckets,
    plot_probe_changes,
    plot_roc_curves,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LABEL_NAMES = ["neutral", "anti-vax", "pro-vax"]


def only_axes(figure):
    """The plot's axes (a colour bar, where there is one, is an axes of its own)."""
    return figure.axes[0]


def legend_texts(axes) -> list[str]:
    legend = axes.get_legend()
    return [text.get_text() for text in legend.get_texts()] if legend else []


def tick_texts(ticks) -> list[str]:
    return [tick.get_text() for tick in ticks]


def cell_texts(axes) -> list[str]:
    return [text.get_text() for text in axes.texts]


def assert_png(path) -> None:
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize(
    ("log_history", "curves"),
    [
        (
            [{"loss": 1.1, "epoch": 1.0}, {"loss": 0.9, "epoch": 2.0}, {"eval_loss": 1.0, "epoch": 2.0}],
            {"training loss": ([1.0, 2.0], [1.1, 0.9]), "validation loss": ([2.0], [1.0])},
        ),
        # the final summary's `train_loss` is not a point of the curve
        ([{"loss": 1.1, "epoch": 0.5}, {"train_loss": 1.0, "epoch": 1.0}], {"training loss": ([0.5], [1.1])}),
    ],
)
def test_loss_curve_draws_training_and_validation_loss_per_epoch(tmp_path, log_history, curves):
    figure = plot_loss_curve(log_history, tmp_path / "loss.png", title="Loss of run 3")
    axes = only_axes(figure)
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == ("Loss of run 3", "epoch", "loss")
    drawn = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in axes.get_lines()}
    assert drawn == curves
    assert legend_texts(axes) == list(curves)
    assert_png(tmp_path / "loss.png")


def test_the_loss_curve_title_names_the_model_and_its_data(tmp_path):
    train, model = tmp_path / "data" / "train.json", tmp_path / "models" / "minilm"
    train.parent.mkdir()
    train.write_text("{}")
    model.mkdir(parents=True)
    assert loss_curve_title(str(model) + "/", str(train), "squad_v2") == \
        "minilm trained on train.json\nvalidation loss on squad_v2"
    assert loss_curve_title("bert-base-uncased", "squad_v2", None) == "bert-base-uncased trained on squad_v2"
    figure = plot_loss_curve([{"loss": 1.0, "epoch": 1.0}], tmp_path / "loss.png", loss_curve_title("m", "d", None))
    assert only_axes(figure).get_title() == "m trained on d"


def test_loss_curve_without_any_loss_says_so(tmp_path):
    axes = only_axes(plot_loss_curve([{"train_runtime": 3.0}], tmp_path / "loss.png"))
    assert axes.get_lines() == [] and axes.get_legend() is None
    assert cell_texts(axes) == ["no loss was logged"]
    assert_png(tmp_path / "loss.png")


def test_roc_curves_one_per_class_with_auc_and_the_chance_line(tmp_path):
    labels = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.array(
        [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.1, 0.1, 0.8]]
    )
    figure = plot_roc_curves(labels, probabilities, LABEL_NAMES, tmp_path / "roc.png")
    axes = only_axes(figure)
    assert axes.get_title() == "ROC curves (one-vs-rest)"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("false positive rate", "true positive rate")
    lines = axes.get_lines()
    assert len(lines) == 4  # three classes and chance
    assert legend_texts(axes) == ["neutral (AUC = 0.875)", "anti-vax (AUC = 0.875)", "pro-vax (AUC = 1.000)", "chance"]
    pro_vax = lines[2]  # perfectly separated: the curve goes straight up to (0, 1)
    assert (0.0, 1.0) in set(zip(pro_vax.get_xdata(), pro_vax.get_ydata(), strict=True))
    assert (list(lines[3].get_xdata()), list(lines[3].get_ydata())) == ([0, 1], [0, 1])
    assert_png(tmp_path / "roc.png")


def test_a_class_missing_from_the_labels_has_no_roc_curve(tmp_path):
    labels = np.array([0, 2, 2, 0])
    probabilities = np.array([[0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.2, 0.5, 0.3]])
    axes = only_axes(plot_roc_curves(labels, probabilities, LABEL_NAMES, tmp_path / "roc.png"))
    assert legend_texts(axes)[1] == "anti-vax (no curve: one-sided labels)"
    assert len(axes.get_lines()[1].get_xdata()) == 0
    assert [len(line.get_xdata()) > 0 for line in axes.get_lines()] == [True, False, True, True]


def test_confusion_matrix_labels_its_ticks_and_counts_each_cell(tmp_path):
    labels = [0, 0, 1, 2, 2, 2]
    predictions = [0, 1, 1, 2, 2, 0]
    figure = plot_confusion_matrix(labels, predictions, LABEL_NAMES, tmp_path / "cm.png", title="Stance")
    axes = only_axes(figure)
    assert (axes.get_title(), axes.get_xlabel(), axes.get_ylabel()) == ("Stance", "predicted", "true")
    assert tick_texts(axes.get_xticklabels()) == LABEL_NAMES
    assert tick_texts(axes.get_yticklabels()) == LABEL_NAMES
    # row by row: count, then its share of the true class
    assert cell_texts(axes) == ["1\n50%", "1\n50%", "0\n0%", "0\n0%", "1\n100%", "0\n0%", "1\n33%", "0\n0%", "2\n67%"]
    np.testing.assert_allclose(axes.images[0].get_array()[2], [1 / 3, 0, 2 / 3])
    assert len(figure.axes) == 2  # the matrix and its colour bar
    assert_png(tmp_path / "cm.png")


def test_confusion_matrix_with_a_class_never_seen(tmp_path):
    axes = only_axes(plot_confusion_matrix([0, 2], [0, 0], LABEL_NAMES, tmp_path / "cm.png"))
    assert cell_texts(axes)[3:6] == ["0\n0%"] * 3  # the anti-vax row: no example, no division by zero


def test_heatmap_marks_missing_cells_and_outlines_the_in_domain_ones(tmp_path):
    values = np.array([[80.0, 40.5], [np.nan, 70.25], [55.0, 12.0]])
    figure = plot_heatmap(values, ["SQuAD", "NewsQA", "QuAC"], ["SQuAD", "NewsQA"], tmp_path / "heat.png",
                          in_domain=[(0, 0), (1, 1)], footnote="- : no model")
    axes = only_axes(figure)
    assert axes.get_title() == "Fine-tuned on (rows) -> evaluated on (columns) (in-domain outlined)"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("evaluated on", "fine-tuned on")
    assert tick_texts(axes.get_xticklabels()) == ["SQuAD", "NewsQA"]
    assert tick_texts(axes.get_yticklabels()) == ["SQuAD", "NewsQA", "QuAC"]
    assert cell_texts(axes) == ["80.0", "40.5", "-", "70.2", "55.0", "12.0"]
    outlined = [(patch.get_x(), patch.get_y()) for patch in axes.patches if isinstance(patch, Rectangle)]
    assert outlined == [(-0.45, -0.45), (0.55, 0.55)]  # inset: diagonal neighbours never touch
    assert figure.get_supxlabel() == "- : no model"
    assert figure.axes[1].get_ylabel() == "F1"  # the colour bar names the metric
    assert_png(tmp_path / "heat.png")


def test_heatmap_cell_text_replaces_the_scores(tmp_path):
    values = np.array([[80.0, np.nan]])
    axes = only_axes(plot_heatmap(values, ["a"], ["a", "b"], tmp_path / "heat.png", metric_name="EM",
                                  cell_text=[["80.0*", "failed"]]))
    assert cell_texts(axes) == ["80.0*", "failed"] and len(axes.patches) == 0
    assert axes.get_title() == "Fine-tuned on (rows) -> evaluated on (columns)"


def test_probe_changes_show_the_probed_score_and_its_change(tmp_path):
    scores = np.array([[60.0, 71.5], [np.nan, 40.0]])
    changes = np.array([[-20.0, 1.5], [np.nan, 0.0]])
    figure = plot_probe_changes(scores, changes, ["SQuAD -> SQuAD", "SQuAD -> NewsQA"], ["shuffled", "no question"],
                                tmp_path / "probes.png")
    axes = only_axes(figure)
    assert axes.get_title() == "Robustness probes: change from the unprobed score\n(cell: probed F1 (change))"
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("probe", "fine-tuned on -> evaluated on")
    assert tick_texts(axes.get_xticklabels()) == ["shuffled", "no question"]
    assert tick_texts(axes.get_yticklabels()) == ["SQuAD -> SQuAD", "SQuAD -> NewsQA"]
    assert cell_texts(axes) == ["60.0 (-20.0)", "71.5 (+1.5)", "-", "40.0 (+0.0)"]
    # the colour scale is symmetric around no change and wide enough for the largest one
    assert axes.images[0].get_clim() == (-20.0, 20.0)
    assert_png(tmp_path / "probes.png")


def test_overlap_buckets_have_a_panel_per_column_and_a_line_per_model(tmp_path):
    values = np.array([[[40.0, 50.0, 60.0], [np.nan, 20.0, 30.0]], [[10.0, 20.0, 30.0], [35.0, 45.0, 55.0]]])
    intervals = np.stack([values - 5, values + 5], axis=-1)
    figure = plot_overlap_buckets(values, intervals, ["a", "b"], ["x", "y"], ["low", "middle", "high"],
                                  tmp_path / "overlap.png", in_domain=[(0, 0), (1, 1)])
    assert (tmp_path / "overlap.png").read_bytes().startswith(PNG_SIGNATURE)
    assert [axes.get_title() for axes in figure.axes] == ["evaluated on x", "evaluated on y"]
    assert tick_texts(figure.axes[0].get_xticklabels()) == ["low", "middle", "high"]
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["a", "b"]
    # Per panel, each model's line through its bucket scores (NaN left out), the in-domain one thicker.
    for panel, widths in zip(figure.axes, ([2.5, 1.2], [1.2, 2.5]), strict=True):
        lines = [line for line in panel.get_lines() if line.get_marker() == "o"]  # not the error bar caps
        assert [line.get_linewidth() for line in lines] == widths
    assert list(figure.axes[1].get_lines()[0].get_ydata()[1:]) == [20.0, 30.0]
