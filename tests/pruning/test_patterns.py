"""Name patterns of include/exclude/keep_trained, and scopes built from them."""

import pytest
import torch
from torch import nn

from sklottery import Pruner
from sklottery.pruning.patterns import as_patterns, is_pattern, matches


class Encoderish(nn.Module):
    """A BERT-shaped toy: embeddings, two encoder layers, a LayerNorm, a head."""

    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(20, 8)
        self.encoder = nn.ModuleList(
            nn.ModuleDict({"query": nn.Linear(8, 8), "output": nn.Linear(8, 8)})
            for _ in range(2)
        )
        self.norm = nn.LayerNorm(8)
        self.classifier = nn.Linear(8, 3)

    def forward(self, x):
        h = self.embeddings(x).mean(1)
        for layer in self.encoder:
            h = layer["output"](torch.relu(layer["query"](h)))
        return self.classifier(self.norm(h))


ENCODER = ["encoder.0.query.weight", "encoder.0.output.weight",
           "encoder.1.query.weight", "encoder.1.output.weight"]


def planned(p):
    return [n for names, _ in p.plan for n in names]


def test_matches_plain_glob_and_regex():
    names = ("encoder.0.query.weight", "encoder.0.query.weight", "encoder.0.query")
    assert matches("encoder", names)  # a parent module
    assert matches("encoder.0.query", names)  # its module
    assert not matches("encode", names)  # not a prefix of a name's part
    assert matches("encoder.*", names)
    assert matches("*.query.*", names)
    assert not matches("*.output.*", names)
    assert matches(r"re:encoder\.\d+\.query\.weight", names)
    assert not matches(r"re:encoder\.\d+", names[:1])  # regexes match in full
    assert is_pattern("a.*") and is_pattern("re:a") and not is_pattern("a.b")


def test_bad_patterns_are_clear_errors():
    with pytest.raises(ValueError, match="not a valid regular expression"):
        as_patterns("re:(", "include")
    with pytest.raises(TypeError, match="include must be a str or a list"):
        Pruner(Encoderish(), include=3)
    with pytest.raises(ValueError, match=r"include: 'decoder\.\*' matches no"):
        Pruner(Encoderish(), include="decoder.*")
    with pytest.raises(ValueError, match=r"keep_trained: 'head\.\*' matches no"):
        Pruner(Encoderish(), keep_trained="head.*")


def test_include_glob_prunes_the_encoder_linears_only():
    # Chen et al. 2020: encoder Linear weights, no embeddings, no classifier
    # (LayerNorm is never prunable)
    p = Pruner(Encoderish(), include="encoder.*", prune_rate=0.5)
    assert planned(p) == ENCODER
    p.prune()
    kept = p.n_kept()
    assert all(kept[n] == 32 for n in ENCODER)
    assert kept["embeddings.weight"] == 160 and kept["classifier.weight"] == 24


def test_include_regex_and_exclude_glob_combine():
    p = Pruner(Encoderish(), include=[r"re:encoder\.\d+\..*", "classifier"],
               exclude="*.output.*")
    assert planned(p) == ["encoder.0.query.weight", "encoder.1.query.weight",
                          "classifier.weight"]


def test_exclude_patterns_keep_the_plain_names_rule():
    plain = Pruner(Encoderish(), exclude=["embeddings", "classifier"])
    globbed = Pruner(Encoderish(), exclude=["embed*", "re:classifier.*"])
    assert planned(plain) == planned(globbed) == ENCODER


def test_patterns_reach_scopes_and_layer_rates():
    p = Pruner(Encoderish(), include="encoder.*",
               scope=[("*.query.*", 0.5)], layer_rates={"*.output.*": 0.25})
    assert p.plan == [
        (["encoder.0.query.weight", "encoder.1.query.weight"], 0.5),
        (["encoder.0.output.weight"], 0.25),
        (["encoder.1.output.weight"], 0.25),
    ]


def test_include_everything_away_is_an_error():
    with pytest.raises(ValueError, match="nothing left to prune: include="):
        Pruner(Encoderish(), include="encoder.*", exclude="encoder")


def test_keep_trained_matches_parameters_and_buffers():
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    assert Pruner(net, keep_trained="2").keep_trained == ["2.weight", "2.bias"]
    assert Pruner(net, keep_trained="1.*").keep_trained == [
        "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked",
    ]
