"""benchmarks/reproduce_bert.py --quick: pretrain, tickets and controls (tiny)."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    spec = importlib.util.spec_from_file_location(
        "reproduce_bert", ROOT / "benchmarks" / "reproduce_bert.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_is_deterministic_and_disjoint(bench):
    split, pretrain = bench.build_corpus(40)
    again, _ = bench.build_corpus(40)
    assert split == again
    assert [len(split[p]) for p in ("train", "valid", "test")] == [28 * 6, 6 * 6, 6 * 6]
    texts = {p: {s for s, _ in split[p]} for p in split}
    assert not texts["train"] & texts["test"] and not texts["valid"] & texts["test"]
    # pretraining never reads the validation or test sentences
    assert not set(pretrain) & (texts["valid"] | texts["test"])
    assert texts["train"] <= set(pretrain)


def test_quick_run(bench, tmp_path, capsys):
    bench.main(["--quick", "--out", str(tmp_path)])
    results = pd.read_csv(tmp_path / "reproduce_bert_quick.csv")
    table = pd.read_csv(tmp_path / "reproduce_bert_quick_table.csv")
    assert table["sparsity"].tolist() == [0.3, 0.5, 0.7]
    assert not table[list(bench.ARMS)].isna().any().any()
    ticket = results[results["arm"] == "ticket"]
    assert ticket["round"].tolist() == list(range(1, 8))
    # linear schedule: round r keeps 1 - r/10 of the encoder's original weights
    total = results["encoder_weights_total"].iloc[0]
    np.testing.assert_allclose(ticket["encoder_weights"] / total,
                               1 - ticket["round"] / 10, atol=1e-3)
    # the controls keep exactly the ticket's counts at 30/50/70%
    for arm in ("random pruning", "random reinit"):
        rows = results[results["arm"] == arm].set_index("round")
        assert rows.index.tolist() == [3, 5, 7]
        np.testing.assert_array_equal(
            rows["encoder_weights"],
            ticket.set_index("round").loc[[3, 5, 7], "encoder_weights"])
    assert results["test_acc"].between(0, 1).all()
    assert "random reinit" in capsys.readouterr().out


def test_rewind_point_is_the_pretrained_checkpoint(bench, tmp_path):
    """The module's __init__ loads the checkpoint: initialize() gives it."""
    import torch

    config = bench.bert_config(50, (16, 1,2), 16)
    state, _, _ = bench.pretrain(
        {"input_ids": np.random.RandomState(0).randint(5, 50, (8, 16)),
         "attention_mask": np.ones((8, 16), dtype=np.int64)},
        config, steps=2, batch_size=4, lr=1e-3, seed=0)
    path = tmp_path / "pretrained.pt"
    torch.save(state, path)
    module = bench.PretrainedBert(bench.bert_config(50, (16, 1, 2), 16, n_labels=3),
                                  str(path))
    loaded = module.model.bert.state_dict()
    for name, value in state.items():
        assert torch.equal(loaded[name], value), name
