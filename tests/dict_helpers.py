"""A small module taking several inputs (skorch's dict ``X``) and, with the
``hf`` extra, a 2-layer BERT built from a local config; shared by the dict
tests."""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNetClassifier
from torch import nn

VOCAB, T = 30, 6


class DictNet(nn.Module):
    """``forward(ids, num)``: token ids ``(n, T)`` and float features ``(n, 3)``."""

    def __init__(self, vocab=VOCAB, n_out=2):
        super().__init__()
        self.emb = nn.Embedding(vocab, 8)
        self.dense = nn.Linear(3, 8)
        self.out = nn.Linear(8, n_out)

    def forward(self, ids, num):
        return self.out(torch.relu(self.emb(ids).mean(1) + self.dense(num)))


def dict_data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, (n, T))
    num = rng.normal(size=(n, 3))
    y = ((ids[:, 0] > VOCAB // 2) ^ (num[:, 0] > 0)).astype(np.int64)
    return {"ids": ids, "num": num}, y


def dict_net(module=DictNet, max_epochs=3, **kwargs):
    params = {
        "criterion": nn.CrossEntropyLoss,
        "optimizer": torch.optim.Adam,
        "lr": 0.02,
        "max_epochs": max_epochs,
        "batch_size": 16,
        "train_split": None,
        "iterator_train__shuffle": True,
        "verbose": 0,
        **kwargs,
    }
    return NeuralNetClassifier(module, **params)


class Bert(nn.Module):
    """A 2-layer ``BertForSequenceClassification`` from a local ``BertConfig``
    (nothing downloaded), taking ``forward(input_ids, attention_mask)``."""

    def __init__(self, vocab_size=VOCAB, num_labels=2, max_length=16):
        super().__init__()
        from transformers import BertConfig, BertForSequenceClassification

        config = BertConfig(
            vocab_size=vocab_size, hidden_size=16, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=max_length, num_labels=num_labels,
        )
        self.bert = BertForSequenceClassification(config)

    def forward(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).logits
