"""
Text classification with TF-IDF features
========================================

A ``TfidfVectorizer`` gives a scipy sparse matrix; the estimators keep it
sparse and densify it one batch at a time, so a pipeline from raw text to a
pruned network is one :func:`~sklearn.pipeline.make_pipeline`. The corpus is
made up here (three topics with shared filler words) so that the example needs
no download.
"""

# %%
# A small corpus
# --------------
import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from skorch import NeuralNetClassifier

from sklottery import MLP, LotteryTicketClassifier

torch.set_num_threads(1)
rng = np.random.default_rng(0)
topics = {
    "sport": "match goal team coach league score player season win referee",
    "science": "atom cell energy theory experiment data lab physics gene orbit",
    "cooking": "recipe oven flour sauce garlic butter bake salt pepper simmer",
}
filler = "the a of and to in is it that for on with as was very really".split()
docs, labels = [], []
for label, words in topics.items():
    words = words.split()
    for _ in range(200):
        # a few topic words among many filler words (and some from other topics)
        n_topic = rng.integers(2, 5)
        other = rng.choice(sum((w.split() for w in topics.values()), []), size=2)
        doc = [*rng.choice(words, n_topic), *other, *rng.choice(filler, 10)]
        docs.append(" ".join(rng.permutation(doc)))
        labels.append(label)
docs_train, docs_test, y_train, y_test = train_test_split(
    docs, labels, test_size=0.3, stratify=labels, random_state=0
)

# %%
# From text to a pruned network
# -----------------------------
net = NeuralNetClassifier(
    MLP,
    module__hidden_units=(32,),
    criterion=torch.nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=1e-2,
    batch_size=60,
    max_epochs=5,
    train_split=None,
    iterator_train__shuffle=True,
    verbose=0,
)
model = make_pipeline(
    TfidfVectorizer(),
    LotteryTicketClassifier(net, n_rounds=5, prune_rate=0.4, random_state=0),
)
model.fit(docs_train, y_train)
clf = model[-1]
print(f"{clf.n_features_in_} TF-IDF features (sparse)")
print(f"test accuracy {model.score(docs_test, y_test):.3f} at "
      f"{100 * (1 - clf.sparsity_):.1f}% of the weights")
clf.rounds_[["round", "weights_remaining", "score"]]
