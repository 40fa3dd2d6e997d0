import pytest
import torch

from mixaug import Example, SyntheticRecord
from mixaug.training import soft_cross_entropy, target_distributions


def test_one_hot_targets_equal_cross_entropy() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.3, -0.2]])
    labels = torch.tensor([0, 2])
    one_hot = torch.nn.functional.one_hot(labels, 3).float()
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert soft_cross_entropy(logits, one_hot).item() == pytest.approx(expected.item(), rel=1e-6)


def test_soft_targets_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0]])
    targets = torch.tensor([[0.25, 0.75]])
    # log softmax = log(0.5) for both classes, so the loss is log 2.
    assert soft_cross_entropy(logits, targets).item() == pytest.approx(0.6931472, rel=1e-6)


def test_weights() -> None:
    logits = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    per = -(targets * torch.log_softmax(logits, -1)).sum(-1)
    w = torch.tensor([1.0, 3.0])
    got = soft_cross_entropy(logits, targets, w).item()
    assert got == pytest.approx(((per * w).sum() / 4).item())
    assert soft_cross_entropy(logits, targets, torch.tensor([1.0, 0.0])).item() == pytest.approx(
        per[0].item()
    )


def test_targets_from_records() -> None:
    rec = SyntheticRecord(
        id="x",
        text="t",
        label="b",
        soft_label={"a": 0.2, "b": 0.8},
        generated_label="b",
        label_mass=1.0,
        anchors=[],
        anchor_strategy="random",
        model="m",
        prompt_hash="h",
        seed=0,
        task="t",
        soft_label_source="inline",
    )
    rows = target_distributions([Example(text="r", label="a"), rec], ["a", "b"])
    assert rows == [[1.0, 0.0], [0.2, 0.8]]
    with pytest.raises(Exception, match="not one of"):
        target_distributions([Example(text="r", label="c")], ["a", "b"])
