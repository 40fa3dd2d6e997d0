"""The effect steps: calibration on a pool, the teacher mix, quotas, targeted anchors, guard."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import REVIEWS, fake_chat, labelled_reply, write_jsonl

import mixaug.augmentation
from mixaug import get_spec
from mixaug.augmentation import augment
from mixaug.calibration import (
    apply_bias,
    batch_bias,
    centroid_probs,
    class_centroids,
    em_prior,
    match_prior,
)
from mixaug.cli import _quotas, main
from mixaug.config import LabelMixConfig
from mixaug.labelmix import Labeller, choose_labeller, fill_quotas, quotas_for
from mixaug.lmscores import LMScores
from mixaug.recipe import GuardReport, guard_gain, split_validation
from mixaug.records import Example
from mixaug.selectors import TargetedAnchorSelector, make_selector

# -- calibration on a pool ---------------------------------------------------------


def test_batch_bias_removes_a_constant_lean() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 400)
    clean = np.where(truth[:, None] == np.arange(2), 1.5, -1.5) + rng.normal(0, 1, (400, 2))
    biased = clean + np.array([4.0, 0.0])  # the model leans to class 0
    raw_acc = (biased.argmax(1) == truth).mean()
    cal = apply_bias(biased, batch_bias(biased))
    assert raw_acc < 0.75
    assert (cal.argmax(1) == truth).mean() > 0.9
    np.testing.assert_allclose(cal.sum(1), 1.0)


def test_batch_bias_with_labels_is_class_balanced() -> None:
    # 9 of 10 rows are class 0: the plain mean leans to it, the class-balanced one does not.
    logp = np.log(np.array([[0.8, 0.2]] * 9 + [[0.2, 0.8]]))
    plain = batch_bias(logp)
    balanced = batch_bias(logp, [0] * 9 + [1])
    assert plain[0] - plain[1] > 1.0
    assert abs(balanced[0] - balanced[1]) < 1e-9


def test_em_prior_recovers_a_shifted_prior() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(4000) < 0.8).astype(int)  # 80 % class 1
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    p1 = 1 / (1 + np.exp(-2 * x))  # the exact posterior under a uniform prior
    prior, adjusted = em_prior(np.stack([1 - p1, p1], axis=1))
    assert abs(prior[1] - 0.8) < 0.04
    np.testing.assert_allclose(adjusted.mean(0), prior, atol=1e-6)


def test_match_prior_hits_the_target_and_keeps_row_order() -> None:
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    q = match_prior(p, np.array([0.5, 0.5]))
    np.testing.assert_allclose(q.mean(0), [0.5, 0.5], atol=1e-5)
    assert list(np.argsort(q[:, 0])) == list(np.argsort(p[:, 0]))


def test_centroid_probs_label_by_the_nearest_class() -> None:
    states = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    cents = class_centroids(states, [0, 0, 1, 1], 2)
    probs = centroid_probs(np.array([[0.8, 0.3], [0.2, 1.0]]), cents, temperature=0.1)
    assert probs.argmax(1).tolist() == [0, 1]
    np.testing.assert_allclose(probs.sum(1), 1.0)


# -- the labeller ------------------------------------------------------------------


def test_product_of_experts_weights() -> None:
    lm = np.log(np.array([[0.9, 0.1]]))
    teacher = np.array([[0.2, 0.8]])
    both = Labeller(LabelMixConfig(calibration="none"), labels=["a", "b"]).combine(lm, teacher)
    # 0.9*0.2 vs 0.1*0.8, normalised.
    np.testing.assert_allclose(both, [[0.18 / 0.26, 0.08 / 0.26]])
    only_t = Labeller(LabelMixConfig(calibration="none", lm_weight=0.0), labels=["a", "b"]).combine(
        lm, teacher
    )
    np.testing.assert_allclose(only_t, teacher)
    only_lm = Labeller(
        LabelMixConfig(calibration="none", teacher="none"), labels=["a", "b"]
    ).combine(lm, teacher)
    np.testing.assert_allclose(only_lm, [[0.9, 0.1]])


def test_sharpen_raises_the_final_label_to_a_power() -> None:
    lm = np.log(np.array([[0.6, 0.4], [0.3, 0.7]]))
    base = Labeller(LabelMixConfig(calibration="none", teacher="none"), labels=["a", "b"])
    sharp = base.with_sharpen(2.0)
    got = sharp.combine(lm)
    np.testing.assert_allclose(got, [[0.36 / 0.52, 0.16 / 0.52], [0.09 / 0.58, 0.49 / 0.58]])
    assert (got.argmax(1) == base.combine(lm).argmax(1)).all()  # the label stays
    assert base.config.sharpen == 1.0 and sharp.config.describe() == "lm[none]^2"
    with pytest.raises(ValueError, match="sharpen"):
        LabelMixConfig(sharpen=0.5)  # below 1 would flatten labels; not a sharpening


def test_agreement_drops_disagreeing_rows() -> None:
    lab = Labeller(LabelMixConfig(calibration="none", agreement=True), labels=["a", "b"])
    lm = np.log(np.array([[0.9, 0.1], [0.2, 0.8]]))
    teacher = np.array([[0.6, 0.4], [0.7, 0.3]])
    assert lab.disagreements(lm, teacher).tolist() == [False, True]


def test_choose_labeller_trusts_whoever_labels_validation_right() -> None:
    y = np.array([0, 1] * 50)
    gold = ["a" if v == 0 else "b" for v in y]
    right = np.where(y[:, None] == np.arange(2), 0.8, 0.2)
    wrong = np.full((100, 2), 0.5) + np.where(np.arange(100)[:, None] % 3 == 0, 0.2, -0.2) * [
        1,
        -1,
    ]
    # An LM that is right and a teacher that is noise: the LM wins, and back.
    lab, _ = choose_labeller(
        LMScores(np.log(right)), gold, ["a", "b"], teachers={"classifier": wrong}
    )
    assert lab.config.lm_weight > 0 and (lab.config.teacher == "none" or lab.config.lm_weight >= 1)
    lab, choices = choose_labeller(
        LMScores(np.log(wrong)), gold, ["a", "b"], teachers={"classifier": right}
    )
    assert lab.config.lm_weight == 0 and lab.config.teacher == "classifier"
    assert choices[0].accuracy == 1.0
    # Without hidden states, hidden-state calibration is not a candidate.
    assert not any(c.config.calibration == "hidden" for c in choices)


def test_quotas_and_fill() -> None:
    assert quotas_for({"a": 2, "b": 4}, 2.0) == {"a": 4, "b": 8}
    assert quotas_for({"a": 5, "b": 5}, 1.0, {"a": 0.7, "b": 0.3}) == {"a": 7, "b": 3}
    kept, surplus = fill_quotas(["a", "a", "a", "b", "a", "b"], {"a": 2, "b": 1})
    assert kept == [0, 1, 3] and surplus == Counter({"a": 2, "b": 1})


def test_cli_quotas_sum_to_n() -> None:
    ex = [Example(text=f"t{i}", label="a" if i < 7 else "b") for i in range(10)]
    assert _quotas("real", 10, ex, ["a", "b"]) == {"a": 7, "b": 3}
    assert _quotas("uniform", 5, ex, ["a", "b", "c"]) == {"a": 2, "b": 2, "c": 1}
    assert sum(_quotas("real", 11, ex, ["a", "b"]).values()) == 11  # type: ignore[union-attr]
    assert _quotas("off", 10, ex, ["a", "b"]) is None


# -- targeted anchors and quotas inside augment -----------------------------------------


def _pool() -> list[dict[str, str]]:
    return [{"text": t, "label": lab} for t, lab in REVIEWS]


def test_targeted_selector_honours_the_hint_and_takes_turns() -> None:
    sel = TargetedAnchorSelector(_pool(), k=2, seed=0)
    assert {a["label"] for a in sel.select_examples({"label": "negative"})} == {"negative"}
    turns = [sel.select_examples({})[-1]["label"] for _ in range(4)]
    assert turns == ["negative", "positive", "negative", "positive"]
    state = sel.get_state()
    a = sel.select_examples({})
    sel.set_state(state)
    assert sel.select_examples({}) == a
    assert make_selector("targeted", [Example(**p) for p in _pool()], k=2).strategy == "targeted"


def test_targeted_selector_puts_the_only_member_last() -> None:
    pool = [*_pool(), {"text": "what a strange one", "label": "odd"}]
    sel = TargetedAnchorSelector(pool, k=2, seed=3)
    anchors = sel.select_examples({"label": "odd"})
    assert len(anchors) == 2 and anchors[-1]["label"] == "odd" and anchors[0]["label"] != "odd"


def _replies(labels: list[str]) -> list[Any]:
    probs = {
        "positive": {" positive": 0.8, " negative": 0.2},
        "negative": {" positive": 0.2, " negative": 0.8},
    }
    texts = {
        "positive": "a bright, warm and very funny comedy with a sharp cast",
        "negative": "a dull, lazy and noisy sequel that never finds its story",
    }
    return [labelled_reply(f"{texts[lab]} {i}", lab, probs[lab]) for i, lab in enumerate(labels)]


def test_augment_fills_quotas_of_the_final_label() -> None:
    llm = fake_chat(_replies(["positive"] * 6 + ["negative"] * 6))
    pool = [Example(text=t, label=lab) for t, lab in REVIEWS]
    sel = TargetedAnchorSelector(pool, k=2, seed=0)
    res = augment(
        pool,
        get_spec("sst2"),
        llm,
        n=99,
        quotas={"positive": 2, "negative": 3},
        selector=sel,
        batch_size=4,
    )
    assert Counter(r.label for r in res.records) == {"positive": 2, "negative": 3}
    assert res.quota_surplus["positive"] == 4  # the full class's surplus is counted
    assert res.complete


def test_augment_labeller_relabels_and_rejects() -> None:
    llm = fake_chat(_replies(["positive"] * 8))
    pool = [Example(text=t, label=lab) for t, lab in REVIEWS]
    rejected: list[Any] = []

    def labeller(records: list[Any]) -> tuple[list[Any], list[tuple[Any, str]]]:
        kept, dropped = [], []
        for r in records:
            if r.text.endswith(" 0"):
                dropped.append((r, "teacher_disagrees"))
                continue
            soft = {"positive": 0.3, "negative": 0.7}
            kept.append(r.model_copy(update={"soft_label": soft, "label": "negative"}))
        return kept, dropped

    res = augment(
        pool,
        get_spec("sst2"),
        llm,
        n=3,
        labeller=labeller,
        batch_size=4,
        on_reject=lambda rows: rejected.extend(rows),
    )
    assert all(r.label == "negative" for r in res.records) and len(res.records) == 3
    assert res.relabelled == 3
    assert res.failures["teacher_disagrees"] == 1
    assert rejected[0].reasons == ["teacher_disagrees"]


def test_augment_rejects_quotas_of_unknown_labels() -> None:
    with pytest.raises(mixaug.errors.MixaugError, match="quotas"):
        augment(
            [Example(text="a", label="positive")] * 3,
            get_spec("sst2"),
            fake_chat([]),
            n=1,
            quotas={"joyful": 2},
        )


# -- the guard -----------------------------------------------------------------------


def test_split_validation_is_stratified_and_disjoint() -> None:
    val = [Example(text=f"v{i}", label="a" if i % 4 else "b") for i in range(40)]
    sel, guard = split_validation(val, 0.5, seed=1)
    assert not {e.text for e in sel} & {e.text for e in guard}
    assert len(sel) + len(guard) == 40
    assert Counter(e.label for e in guard) == {"a": 15, "b": 5}
    assert split_validation(val, 0.5, seed=1) == (sel, guard)


def _stub_fit(gain: float) -> Any:
    calls = []

    def fit(real: Any, syn: Any, weight: float, val: Any, seed: int, ev: Any) -> Any:
        calls.append(seed)
        base = 0.60 + 0.01 * (seed % 3)
        return None, [base + (gain if syn else 0.0)]

    return fit


def test_guard_says_plainly_when_augmentation_hurts_or_helps() -> None:
    real = [Example(text="r", label="a")]
    syn: list[Any] = ["x"]
    val = [Example(text="v", label="a")]
    hurt = guard_gain(_stub_fit(-0.05), real, syn, 1.0, val, val, 0, 3)
    assert isinstance(hurt, GuardReport) and not hurt.helps
    assert hurt.gain == pytest.approx(-5.0) and "does not help" in hurt.verdict
    helps = guard_gain(_stub_fit(0.04), real, syn, 1.0, val, val, 0, 3)
    assert (
        helps.helps
        and helps.gain == pytest.approx(4.0)
        and helps.verdict.startswith("augmentation helps")
    )
    none = guard_gain(_stub_fit(0.0), real, [], 1.0, val, val, 0, 2)
    assert not none.helps and none.gain == 0.0 and "no synthetic record" in none.verdict


def test_on_a_few_shot_validation_set_the_guard_gives_the_benefit_of_the_doubt() -> None:
    real = [Example(text="r", label="a")]
    syn: list[Any] = ["x"]
    val = [Example(text=f"v{i}", label="a") for i in range(8)]
    # One text of eight is 12.5 points: a 5-point loss is noise, not evidence.
    small = guard_gain(_stub_fit(-0.05), real, syn, 1.0, val, val, 0, 3, benefit_of_doubt=True)
    assert small.helps and small.verdict.startswith("too few validation examples to tell")
    # A loss beyond one standard error still vetoes, and a clear gain is a gain.
    clear = guard_gain(_stub_fit(-0.4), real, syn, 1.0, val, val, 0, 3, benefit_of_doubt=True)
    assert not clear.helps and "does not help" in clear.verdict
    gain = guard_gain(_stub_fit(0.2), real, syn, 1.0, val, val, 0, 3, benefit_of_doubt=True)
    assert gain.helps and gain.verdict.startswith("augmentation helps")
    # Without it (settings chosen on validation) the same 5-point loss vetoes.
    assert not guard_gain(_stub_fit(-0.05), real, syn, 1.0, val, val, 0, 3).helps


def test_the_recipe_keeps_its_defaults_on_a_few_shot_validation_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mixaug.recipe
    from mixaug.recipe import RecipeConfig, run_recipe

    real = [Example(text=t, label=lab) for t, lab in REVIEWS]
    val = [Example(text=f"{t} again", label=lab) for t, lab in REVIEWS]
    spec = get_spec("sst2")
    pool = augment(real, spec, fake_chat(_replies(["positive", "negative"] * 12)), n=16).records
    fits: list[int] = []
    real_fit = mixaug.recipe._Fit.__call__

    def counting(self: Any, *a: Any, **k: Any) -> Any:
        fits.append(1)
        return real_fit(self, *a, **k)

    monkeypatch.setattr(mixaug.recipe._Fit, "__call__", counting)
    cfg = RecipeConfig(guard_seeds=1)
    assert not cfg.searches(len(val)) and RecipeConfig().searches(200)
    result = run_recipe(real, val, pool, llm=None, spec=spec, config=cfg)
    rep = result.report
    assert rep.searched is False and rep.labeller == "lm[prior]xcentroid(1:1)^4"
    assert (rep.ratio, rep.weight, rep.prior, rep.sharpen) == (5.0, 1.0, "real", 4.0)
    assert len(rep.selection) == 1  # nothing tried: no classifier was trained to choose
    assert len(fits) == 2  # the guard's with and without, one seed
    # All of validation guards, since nothing was chosen on it.
    assert result.guard_set == val and rep.guard is not None and rep.guard.examples == len(val)
    labels = Counter(r.label for r in result.records)
    assert sum(labels.values()) == rep.synthetic_used and max(labels.values()) <= 5 * 4
    # Asked to, it searches the same small set (split in two).
    flat = lambda items: LMScores(np.log(np.full((len(items), 2), 0.5)))  # noqa: E731
    asked = RecipeConfig(guard_seeds=1, search="validation", calibrations=["none"])
    searched = run_recipe(real, val * 2, pool, llm=None, spec=spec, config=asked, score=flat)
    assert searched.report.searched and len(searched.report.selection) > 1


def test_the_recipe_vetoes_records_its_guard_says_do_not_help(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mixaug.recipe
    from mixaug.recipe import RecipeConfig, run_recipe

    real = [Example(text=t, label=lab) for t, lab in REVIEWS]
    val = [Example(text=f"{t} again", label=lab) for t, lab in REVIEWS] * 2
    spec = get_spec("sst2")
    pool = augment(real, spec, fake_chat(_replies(["positive", "negative"] * 6)), n=8).records
    flat = lambda items: LMScores(np.log(np.full((len(items), 2), 0.5)))  # noqa: E731
    forced = {"fallback": False, "teachers": ["centroid"], "calibrations": ["none"],
              "ratios": [1.0], "weights": [1.0], "sharpen": [1.0], "guard_seeds": 1,
              "search": "validation"}  # fmt: skip
    hurt = GuardReport(examples=8, with_synthetic=[0.4], without=[0.5], gain=-10.0, spread=0.0,
                       verdict="augmentation does not help", helps=False)  # fmt: skip
    monkeypatch.setattr(mixaug.recipe, "guard_gain", lambda *a, **k: hurt)
    for veto in (True, False):
        cfg = RecipeConfig(veto=veto, **forced)
        result = run_recipe(real, val, pool, llm=None, spec=spec, config=cfg, score=flat)
        assert result.report.vetoed is veto and result.report.guard == hurt
        assert (result.records == []) is veto and (result.report.ratio is None) is veto


def _soft_records(dists: list[dict[str, float]]) -> list[Any]:
    from mixaug.records import SyntheticRecord

    return [
        SyntheticRecord(
            id=f"r{i}",
            text=f"text {i}",
            label=max(d, key=d.__getitem__),
            soft_label=d,
            generated_label=None,
            label_mass=1.0,
            anchors=[],
            anchor_strategy="random",
            model="m",
            prompt_hash="h",
            seed=0,
            task="sst2",
            soft_label_source="inline",
        )  # fmt: skip
        for i, d in enumerate(dists)
    ]


def test_match_label_prior_gives_soft_labels_the_records_class_shares() -> None:
    from mixaug.recipe import match_label_prior

    labels = ["negative", "positive"]
    # An unsure labeller: 3 of 4 records are positive, but the soft mass is 57.5 %.
    recs = _soft_records([{"negative": 0.3, "positive": 0.7}] * 3
                         + [{"negative": 0.8, "positive": 0.2}])  # fmt: skip
    before = np.mean([[r.soft_label[c] for c in labels] for r in recs], axis=0)
    out = match_label_prior(recs, labels)
    after = np.mean([[r.soft_label[c] for c in labels] for r in out], axis=0)
    assert before[1] == pytest.approx(0.575)
    assert after[1] == pytest.approx(0.75, abs=1e-3)  # the records' label share
    assert [r.label for r in out] == [r.label for r in recs]  # labels kept
    for r in out:
        assert sum(r.soft_label.values()) == pytest.approx(1.0)
        assert r.soft_label[r.label] == max(r.soft_label.values())
        assert 0.0 < min(r.soft_label.values())  # still soft
    assert match_label_prior([], labels) == []


def test_the_recipe_matches_soft_labels_to_the_class_shares_unless_told_not_to() -> None:
    from mixaug.recipe import RecipeConfig, run_recipe

    real = [Example(text=t, label=lab) for t, lab in REVIEWS]
    val = [Example(text=f"{t} again", label=lab) for t, lab in REVIEWS] * 2
    spec = get_spec("sst2")
    pool = augment(real, spec, fake_chat(_replies(["positive"] * 10 + ["negative"] * 2)),
                   n=12).records  # fmt: skip
    flat = lambda items: LMScores(np.log(np.full((len(items), 2), 0.5)))  # noqa: E731
    forced = {"fallback": False, "teachers": [], "calibrations": ["none"], "ratios": [5.0],
              "weights": [1.0], "sharpen": [1.0], "priors": ["real"], "quotas": False,
              "guard": False, "search": "validation"}  # fmt: skip
    forced["labeller"] = LabelMixConfig(calibration="none", teacher="none")
    means = {}
    for match in (True, False):
        cfg = RecipeConfig(prior_match=match, **forced)
        recs = run_recipe(real, val, pool, llm=None, spec=spec, config=cfg, score=flat).records
        assert recs
        share = sum(r.label == "positive" for r in recs) / len(recs)
        means[match] = (share, float(np.mean([r.soft_label["positive"] for r in recs])))
    share, matched = means[True]
    assert matched == pytest.approx(share, abs=0.02)
    assert abs(means[False][1] - share) > abs(matched - share)


# -- the CLI ---------------------------------------------------------------------------


def test_augment_cli_default_recipe_fills_quotas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    llm = fake_chat(_replies(["positive", "negative"] * 20))
    monkeypatch.setattr(mixaug.augmentation, "build_llm", lambda *a, **k: llm)
    out = tmp_path / "syn.jsonl"
    code = main(
        [
            "augment",
            "--data",
            str(data),
            "--task",
            "sst2",
            "--n",
            "4",
            "--out",
            str(out),
            "--json",
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["quotas"] == {"positive": 2, "negative": 2}
    assert Counter(json.loads(x)["label"] for x in out.read_text().splitlines()) == {
        "positive": 2,
        "negative": 2,
    }
    # The fake cannot score texts, so the LM part stays uncalibrated; the teacher joins.
    assert summary["labeller"].startswith("lm[none]xcentroid")
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["teacher_label"] is not None and r["soft_label_raw"] for r in rows)
    assert all(r["anchor_strategy"] == "targeted" for r in rows)


def test_augment_cli_guard_needs_validation(reviews_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "syn.jsonl"
    code = main(
        [
            "augment",
            "--data",
            str(reviews_file),
            "--task",
            "sst2",
            "--n",
            "4",
            "--out",
            str(out),
            "--guard",
            "--quiet",
        ]
    )
    assert code == 2
    assert not out.exists() and not (tmp_path / "syn.manifest.json").exists()


def test_recipe_cli_writes_a_config_that_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixaug.config import load_config

    data = write_jsonl(tmp_path / "train.jsonl", [{"text": t, "label": lab} for t, lab in REVIEWS])
    val_rows = [{"text": f"{t} again", "label": lab} for t, lab in REVIEWS]
    val = write_jsonl(tmp_path / "val.jsonl", val_rows * 2)
    llm = fake_chat(_replies(["positive", "negative"] * 30))
    monkeypatch.setattr(mixaug.providers, "build_llm", lambda *a, **k: llm)
    monkeypatch.setattr(mixaug.augmentation, "build_llm", lambda *a, **k: llm)
    out = tmp_path / "recipe.yaml"
    # --search validation: this --val is smaller than auto's 200 (tested below).
    args = ["recipe", "--data", str(data), "--val", str(val), "--task", "sst2", "--out",
            str(out), "--ratio", "2", "--quiet", "--search", "validation"]  # fmt: skip
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    cfg = load_config(out)  # the written config is a valid mixaug config
    assert cfg.anchors.strategy == "targeted"
    report = json.loads((tmp_path / "recipe.report.json").read_text())
    assert report["guard"]["examples"] > 0 and printed["labeller"] == report["labeller"]
    tried = {r["sharpen"] for r in report["selection"] if r["weight"]}
    assert tried == {1.0, 2.0, 4.0}  # every power was tried on the selection half
    if report["sharpen"] not in (None, 1.0) and cfg.labels.labeller is not None:
        assert cfg.labels.labeller.sharpen == report["sharpen"]  # and the config keeps it
    assert main(args) == 2  # never overwritten without --overwrite
    same = ["recipe", "--data", str(data), "--val", str(val), "--task", "sst2", "--out",
            str(data), "--overwrite", "--quiet"]  # fmt: skip
    assert main(same) == 2 and data.read_text().count("\n") == len(REVIEWS)


def test_effect_summary_applies_the_guard_veto(tmp_path: Path) -> None:
    # benchmarks/effect.py reports the recipe as shipped: a run whose guard says the
    # records do not help is NoAug's run; the rows as trained stay under abl-noveto.
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "effect.py"
    spec = importlib.util.spec_from_file_location("effect_bench", path)
    assert spec is not None and spec.loader is not None
    effect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(effect)
    rows = [
        {"level": 0.01, "seed": 0, "method": "noaug", "accuracy": 0.60},
        {"level": 0.01, "seed": 1, "method": "noaug", "accuracy": 0.62},
        {"level": 0.01, "seed": 0, "method": "mix-soft", "accuracy": 0.55,
         "guard": {"gain": -2.0, "helps": False}, "train_seconds": 1, "generation_seconds": 1},
        {"level": 0.01, "seed": 1, "method": "mix-soft", "accuracy": 0.66,
         "guard": {"gain": 3.0, "helps": True}, "train_seconds": 1, "generation_seconds": 1},
    ]  # fmt: skip
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cell = effect.summarise(tmp_path)["cells"][0]
    assert cell["accuracy"]["mix-soft"]["mean"] == pytest.approx(63.0)  # 60 (vetoed), 66
    assert cell["accuracy"]["abl-noveto"]["mean"] == pytest.approx(60.5)  # 55, 66 as trained
    assert cell["vetoed"] == 1 and cell["guard_sign_agrees"] == [True, True]
    raw = effect.summarise(tmp_path, veto=False)["cells"][0]
    assert raw["accuracy"]["mix-soft"]["mean"] == pytest.approx(60.5)


def test_balance_to_quotas_gives_the_records_the_quotas_shares() -> None:
    from mixaug.recipe import balance_to_quotas

    pos, neg = {"positive": 0.8, "negative": 0.2}, {"positive": 0.3, "negative": 0.7}
    recs = _soft_records([pos] * 20 + [neg] * 8)

    def mass(out: list[Any]) -> dict[str, float]:
        m: dict[str, float] = {}
        for r in out:
            m[r.label] = m.get(r.label, 0.0) + r.weight
        return m

    # Quotas 20/20: the 8 negatives weigh 2.5 each (under the cap of 3), 20 positives kept.
    out = balance_to_quotas(recs, {"positive": 20, "negative": 20})
    assert mass(out) == pytest.approx({"positive": 20.0, "negative": 20.0})
    assert {r.weight for r in out if r.label == "negative"} == {2.5}
    # Quotas 35/35: the cap binds (8 x 3 = 24): 24 of each, the 20 positives weigh 1.2.
    out = balance_to_quotas(recs, {"positive": 35, "negative": 35})
    assert mass(out) == pytest.approx({"positive": 24.0, "negative": 24.0})
    assert [round(r.weight, 6) for r in out if r.label == "positive"] == [1.2] * 20
    # Already balanced: unchanged; a class with no record cannot be balanced.
    even = _soft_records([pos] * 5 + [neg] * 5)
    assert balance_to_quotas(even, {"positive": 5, "negative": 5}) == even
    assert balance_to_quotas(recs[:20], {"positive": 5, "negative": 5}) == recs[:5]


def test_the_fixed_recipe_uses_records_only_when_the_lm_beats_the_teacher_alone() -> None:
    from mixaug.recipe import RecipeConfig, run_recipe

    real = [Example(text=t, label=lab) for t, lab in REVIEWS]
    val = [Example(text=f"{t} again", label=lab) for t, lab in REVIEWS]
    gold = {e.text: e.label for e in [*real, *val]}
    spec = get_spec("sst2")
    names = list(spec.label_names)
    pool = augment(real, spec, fake_chat(_replies(["positive", "negative"] * 12)), n=16).records

    def scores(right: bool) -> Any:
        def score(items: list[tuple[list[Example], str]]) -> LMScores:
            rows = []
            for _, text in items:
                hit = names.index(gold[text]) if right else 1 - names.index(gold[text])
                rows.append([0.95 if j == hit else 0.05 for j in range(2)])
            return LMScores(np.log(np.array(rows)))

        return score

    cfg = RecipeConfig(guard_seeds=1)
    good = run_recipe(real, val, pool, llm=None, spec=spec, config=cfg, score=scores(True))
    gate = good.report.gate
    assert gate is not None and gate["examples"] == len(real) + len(val)
    assert gate["labeller"] > gate["teacher"] and gate["passes"] and good.records
    # An LM that labels the user's texts wrongly: its records would teach noise.
    bad = run_recipe(real, val, pool, llm=None, spec=spec, config=cfg, score=scores(False))
    assert bad.report.gate is not None and not bad.report.gate["passes"]
    assert bad.records == [] and bad.report.synthetic_used == 0
    # Off, or a model that cannot score texts: the records are used unchecked.
    off = RecipeConfig(guard_seeds=1, fixed_gate=False)
    assert run_recipe(real, val, pool, llm=None, spec=spec, config=off, score=scores(False)).records
    blind = run_recipe(real, val, pool, llm=None, spec=spec, config=cfg)
    assert blind.report.gate is None and blind.records
