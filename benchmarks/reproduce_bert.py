"""Reproduce Chen et al. (2020), pretrained-BERT tickets, at toy scale on CPU.

The protocol of "The Lottery Ticket Hypothesis for Pre-trained BERT
Networks", shrunk to run in minutes on a laptop CPU:

1. **Corpus.** Sentences of the docstrings of a fixed list of standard-library
   modules (``inspect``, in a deterministic order), so the data ships with
   Python: nothing is downloaded. The text depends on the Python version.
2. **Pretraining.** A tiny BERT (``transformers.BertConfig``, built locally,
   never from the hub) is pretrained with masked-language modelling (15% of
   the tokens: 80% ``[MASK]``, 10% random, 10% kept) on every sentence but
   the downstream task's validation and test ones, with a WordPiece
   tokenizer (``tokenizers``) trained on the same text. Once per seed.
3. **Downstream task.** Six-way classification of a docstring sentence by
   the topic of its module (files, text, numbers, network, concurrency, data
   formats), classes balanced, split 70/15/15 deterministically.
4. **Tickets.** ``BertForSequenceClassification`` whose ``__init__`` loads
   the pretrained encoder and embeddings, so the rewind point after
   ``initialize()`` is the pretrained weights. A
   :class:`~sklottery.LotteryTicketClassifier` prunes the encoder's
   ``Linear`` weights only (``include="*.encoder.*"``: no embeddings,
   LayerNorm, pooler or classifier) by magnitude, layer by layer,
   ``schedule="linear"`` 10% of the original weights per round up to 70%,
   every round rewound to the pretrained weights, the fresh pooler and
   classifier to their initialization (``rewind="init"``: Algorithm 1 of
   the paper trains ``f(x; m * theta_0, gamma_0)`` every round); ``--head
   trained`` keeps their trained values instead (``keep_trained``). Round 0
   is the full fine-tune.
5. **Controls** at 30%, 50% and 70%, with the ticket's exact per-layer counts
   and the ticket round's head: *random pruning* (a uniformly random mask in
   each layer, the pretrained weights) and *random reinitialization* (the
   ticket's mask, the pruned tensors redrawn from BERT's initializer,
   ``N(0, 0.02)``; embeddings and biases stay pretrained).

Accuracy is that of the final weights of each fine-tune on the test split
(the validation split's is recorded too). Writes ``reproduce_bert.csv``
(one row per seed, arm and sparsity) and ``reproduce_bert_table.csv`` (mean
and std over seeds) into ``--out`` (``reproduce_bert_quick*`` with
``--quick``), by default ``benchmarks/output`` (not committed); ``--out
benchmarks/results`` refreshes the committed figures. ``--quick`` is a
smoke test of a few seconds (results meaningless).

Reference
---------
T. Chen, J. Frankle, S. Chang, S. Liu, Y. Zhang, Z. Wang and M. Carbin,
"The Lottery Ticket Hypothesis for Pre-trained BERT Networks", NeurIPS 2020.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the config is local: never the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from skorch import NeuralNetClassifier  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402
from skorch.dataset import Dataset  # noqa: E402
from skorch.helper import predefined_split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUTPUT = ROOT / "benchmarks" / "output"
OUT_HELP = ("output folder (default benchmarks/output, not committed; "
            "--out benchmarks/results refreshes the committed figures)")

from sklottery import ApplyMasks, LotteryTicketClassifier  # noqa: E402
from sklottery.analysis import random_masks  # noqa: E402
from sklottery.pruning import apply_masks, load_values  # noqa: E402

#: The downstream classes: a topic each, its modules' docstrings.
CLASSES = {
    "files": ["os", "os.path", "pathlib", "shutil", "tempfile", "glob",
              "fnmatch", "filecmp", "stat"],
    "text": ["re", "string", "textwrap", "difflib", "shlex", "unicodedata",
             "codecs"],
    "numbers": ["math", "cmath", "statistics", "decimal", "fractions",
                "random", "numbers"],
    "network": ["socket", "ssl", "http.client", "http.server", "http.cookiejar",
                "urllib.request", "urllib.parse", "smtplib", "ftplib",
                "email.message", "imaplib"],
    "concurrency": ["threading", "multiprocessing.pool", "multiprocessing.managers",
                    "asyncio.events", "asyncio.tasks", "asyncio.queues",
                    "asyncio.streams", "subprocess", "queue",
                    "concurrent.futures", "sched", "selectors"],
    "data formats": ["json", "csv", "pickle", "sqlite3", "zipfile", "tarfile",
                     "gzip", "configparser", "xml.etree.ElementTree", "plistlib",
                     "base64", "struct"],
}
#: Unlabelled text only: pretraining reads these too.
EXTRA = ["collections", "itertools", "functools", "typing", "inspect",
         "argparse", "logging", "unittest", "datetime", "calendar", "enum",
         "dataclasses", "contextlib", "abc", "traceback", "warnings", "pdb",
         "doctest", "heapq", "bisect", "weakref", "copy", "pprint", "operator",
         "builtins", "locale", "gettext", "optparse", "getopt", "timeit"]
ALIASES = {"os.path": {"posixpath", "genericpath"}, "os": {"posix"},
           "stat": {"_stat"}}
ARMS = ("full fine-tune", "ticket", "random pruning", "random reinit")
SPARSITIES = (0.3, 0.5, 0.7)
PROGRESS = False  # one line per fine-tune (not with --quick)
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# -- corpus ------------------------------------------------------------------
def _owned(obj, modname) -> bool:
    owner = getattr(obj, "__module__", None) or ""
    return (owner.lstrip("_").split(".")[0] == modname.split(".")[0]
            or owner in ALIASES.get(modname, ()))


def module_docstrings(modname) -> list[str]:
    """The module's own docstrings: the module, its public functions and
    classes (defined there) and their methods, in sorted name order."""
    try:
        mod = importlib.import_module(modname)
    except ImportError:
        return []
    docs = [mod.__doc__]
    with warnings.catch_warnings():  # typing.io and the like: deprecated names
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, obj in sorted(vars(mod).items()):
            if (name.startswith("_") or inspect.ismodule(obj)
                    or not _owned(obj, modname)):
                continue
            docs.append(getattr(obj, "__doc__", None) if callable(obj) else None)
            if inspect.isclass(obj):
                for _, member in sorted(vars(obj).items()):
                    docs.append(getattr(member, "__doc__", None))
    return [inspect.cleandoc(d) for d in docs if isinstance(d, str) and d.strip()]


def sentences(doc) -> list[str]:
    text = re.sub(r"\s+", " ", doc)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text) if s.strip()]


def build_corpus(per_class):
    """(task, pretraining text): the task's sentences with labels, split
    70/15/15 per class, and every sentence for MLM but the task's validation
    and test ones."""
    labelled, seen = {}, {}
    for label, modules in CLASSES.items():
        for modname in modules:
            for doc in module_docstrings(modname):
                for s in sentences(doc):
                    seen.setdefault(s, set()).add(label)
                    labelled.setdefault(label, {}).setdefault(s, None)
    rng = np.random.RandomState(0)
    split = {"train": [], "valid": [], "test": []}
    held_out = set()
    n = min(per_class, *(sum(1 for s in d if _usable(s, seen))
                         for d in labelled.values()))
    for y, (label, sents) in enumerate(labelled.items()):
        usable = sorted(s for s in sents if _usable(s, seen))
        chosen = [usable[i] for i in rng.permutation(len(usable))[:n]]
        n_tr, n_va = int(0.7 * n), int(0.15 * n)
        parts = {"train": chosen[:n_tr], "valid": chosen[n_tr:n_tr + n_va],
                 "test": chosen[n_tr + n_va:]}
        for part, items in parts.items():
            split[part] += [(s, y) for s in items]
        held_out.update(parts["valid"] + parts["test"])
    pretrain = []
    for modname in [m for mods in CLASSES.values() for m in mods] + EXTRA:
        for doc in module_docstrings(modname):
            pretrain += [s for s in sentences(doc) if s not in held_out
                         and len(s.split()) >= 3]
    return split, list(dict.fromkeys(pretrain))


def _usable(sentence, seen) -> bool:
    """6-40 words, found in one class only, some letters."""
    words = sentence.split()
    return 6 <= len(words) <= 40 and len(seen[sentence]) == 1 and any(
        c.isalpha() for c in sentence)


def train_tokenizer(texts, vocab_size, max_len):
    from tokenizers import (
        Tokenizer,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, show_progress=False))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.enable_truncation(max_length=max_len)
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]",
                       length=max_len)
    return tok


def encode(tok, texts) -> dict:
    enc = tok.encode_batch(texts)
    return {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}


# -- pretraining ---------------------------------------------------------------
def bert_config(vocab_size, size, max_len, n_labels=None):
    from transformers import BertConfig

    hidden, layers, heads = size
    extra = {} if n_labels is None else {"num_labels": n_labels}
    return BertConfig(vocab_size=vocab_size, hidden_size=hidden,
                      num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=4 * hidden, max_position_embeddings=max_len,
                      pad_token_id=0, **extra)


def mask_tokens(ids, attention, vocab_size, generator):
    """BERT's MLM corruption: 15% of the real tokens (never [CLS]/[SEP]/[PAD])
    are targets; 80% of them become [MASK], 10% a random token, 10% stay."""
    special = ids < len(SPECIAL)
    chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & ~special
    chosen &= attention.bool()
    corrupted = ids.clone()
    roll = torch.rand(ids.shape, generator=generator)
    corrupted[chosen & (roll < 0.8)] = SPECIAL.index("[MASK]")
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    corrupted[swap] = torch.randint(len(SPECIAL), vocab_size, ids.shape,
                                    generator=generator)[swap]
    return corrupted, chosen


def pretrain(encoded, config, *, steps, batch_size, lr, seed):
    """MLM pretraining from a seeded random init; returns (state of
    ``bert.*`` without the MLM head, final MLM loss, masked-token accuracy of
    the last 10% of the steps)."""
    from transformers import BertForMaskedLM

    torch.manual_seed(seed)
    model = BertForMaskedLM(config)
    ids = torch.as_tensor(encoded["input_ids"])
    attention = torch.as_tensor(encoded["attention_mask"])
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup))))
    model.train()
    losses, hits = [], []
    for step in range(steps):
        rows = torch.randint(len(ids), (batch_size,), generator=gen)
        inputs, targets = mask_tokens(ids[rows], attention[rows],
                                      config.vocab_size, gen)
        hidden = model.bert(input_ids=inputs, attention_mask=attention[rows])[0]
        logits = model.cls(hidden[targets])  # the masked positions only
        loss = torch.nn.functional.cross_entropy(logits, ids[rows][targets])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step >= steps - max(1, steps // 10):
            losses.append(loss.item())
            hits.append(float((logits.argmax(1) == ids[rows][targets]).float().mean()))
    state = {k[len("bert."):]: v.detach().clone() for k, v in model.state_dict().items()
             if k.startswith("bert.")}
    return state, float(np.mean(losses)), float(np.mean(hits))


# -- fine-tuning ------------------------------------------------------------------
class PretrainedBert(torch.nn.Module):
    """``BertForSequenceClassification`` whose encoder and embeddings are the
    pretrained checkpoint, loaded in ``__init__``: the rewind point after
    ``initialize()`` is the pretrained weights. The pooler and classifier
    are freshly initialized (the torch seed the estimator sets). Returns
    the logits."""

    def __init__(self, config, checkpoint):
        super().__init__()
        from transformers import BertForSequenceClassification

        self.model = BertForSequenceClassification(config)
        if next(self.parameters()).is_meta:  # sklottery sizing it on "meta"
            return
        state = torch.load(checkpoint, weights_only=True)
        missing, unexpected = self.model.bert.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("pooler.") for k in missing):
            raise RuntimeError(f"checkpoint mismatch: {missing} {unexpected}")

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _accuracy(module, X, y, batch=256):
    was = module.training
    module.eval()
    with torch.no_grad():
        logits = torch.cat([
            module(**{k: torch.as_tensor(v[i:i + batch]) for k, v in X.items()})
            for i in range(0, len(y), batch)])
    module.train(was)
    return float((logits.argmax(1).numpy() == y).mean())


class Log:
    """Shared by every clone of the tracker (the estimator clones its net)."""

    def __init__(self):
        self.records, self.masks, self.starts = [], [], []

    def __deepcopy__(self, memo):
        return self


class Tracker(Callback):
    """Per training: the masks and every tensor's values it starts from, and
    the validation and test accuracy of its final weights."""

    def __init__(self, data, log):
        self.data = data
        self.log = log

    def on_train_begin(self, net, **kwargs):
        masks = [getattr(cb.masks, "masks", cb.masks) for _, cb in net.callbacks_
                 if isinstance(cb, ApplyMasks)]
        self.log.masks.append({n: m.detach().clone().cpu() for n, m in masks[0].items()}
                              if masks else None)
        self.log.starts.append({k: v.detach().clone()
                                for k, v in net.module_.state_dict().items()})

    def on_train_end(self, net, **kwargs):
        _, (X_va, y_va), (X_te, y_te) = self.data
        record = {"valid_acc": _accuracy(net.module_, X_va, y_va),
                  "test_acc": _accuracy(net.module_, X_te, y_te)}
        self.log.records.append(record)
        if PROGRESS:
            masks = self.log.masks[-1] and encoder_masks(self.log.masks[-1])
            kept = 1.0 if not masks else (
                sum(int(m.sum()) for m in masks.values())
                / sum(m.numel() for m in masks.values()))
            print(f"    {100 * kept:5.1f}% of the encoder: valid acc "
                  f"{record['valid_acc']:.4f}, test acc {record['test_acc']:.4f} "
                  f"({time.process_time():.0f}s CPU)", flush=True)


def make_net(data, config, checkpoint, args, log, callbacks=()):
    _, (X_va, y_va), _ = data
    return NeuralNetClassifier(
        PretrainedBert, module__config=config, module__checkpoint=checkpoint,
        criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.AdamW,
        lr=args.lr, batch_size=32, max_epochs=args.epochs,
        train_split=predefined_split(Dataset(X_va, y_va)),
        iterator_train__shuffle=True, verbose=0,
        callbacks=[("tracker", Tracker(data, log)), *callbacks])


def find_tickets(data, config, checkpoint, args, seed):
    """The IMP run: rounds 0 (the full fine-tune) to 7 (70% pruned)."""
    (X_tr, y_tr), _, _ = data
    log = Log()
    keep = None if args.head == "rewound" else ["*.pooler.*", "*.classifier.*"]
    clf = LotteryTicketClassifier(
        make_net(data, config, checkpoint, args, log),
        strategy="large_final", rewind="init", include="*.encoder.*",
        keep_trained=keep, schedule="linear", prune_rate=0.1,
        n_rounds=int(round(10 * max(SPARSITIES))), output_rate_factor=None,
        sparse_training=False, random_state=seed)
    clf.fit(X_tr, y_tr)
    if len(log.records) != len(clf.rounds_):
        raise RuntimeError(
            f"{len(log.records)} trainings for {len(clf.rounds_)} rounds")
    return clf, log


def train_control(data, config, checkpoint, args, values, masks, seed):
    """One fine-tune from ``values`` under ``masks`` (kept zero)."""
    (X_tr, y_tr), _, _ = data
    log = Log()
    net = make_net(data, config, checkpoint, args, log,
                   callbacks=[("masks", ApplyMasks(masks))])
    net.initialize()
    load_values(net.module_, values)
    apply_masks(net.module_, masks)
    torch.manual_seed(seed)
    net.partial_fit(X_tr, y_tr)
    return log.records[0]


def encoder_masks(masks) -> dict:
    """The pruned tensors' masks: ``masks_`` covers every prunable tensor,
    those outside ``include`` with every weight kept."""
    return {n: m for n, m in masks.items() if ".encoder." in n}


def controls(log, r, data, config, checkpoint, args, seed):
    """Random pruning and random reinit at round ``r``'s per-layer counts,
    from the ticket round's start (its head included)."""
    masks, start, pretrained = log.masks[r], log.starts[r], log.starts[0]
    encoder = encoder_masks(masks)
    gen = torch.Generator().manual_seed(1000 * seed + r)
    rand = {**masks, **random_masks(encoder, gen)}
    pruned_values = {**start, **{n: pretrained[n] for n in encoder}}
    reinit_values = {**start, **{
        n: torch.randn(pretrained[n].shape, generator=gen) * config.initializer_range
        for n in encoder}}
    return {
        "random pruning": train_control(data, config, checkpoint, args,
                                        pruned_values, rand, seed),
        "random reinit": train_control(data, config, checkpoint, args,
                                       reinit_values, masks, seed),
    }


# -- one seed, the table -------------------------------------------------------------
def run_seed(data, pre_enc, vocab, args, seed, workdir):
    config = bert_config(vocab, args.size, args.max_len)
    t0, c0 = time.perf_counter(), time.process_time()
    state, mlm_loss, mlm_acc = pretrain(pre_enc, config, steps=args.mlm_steps,
                                        batch_size=64, lr=args.mlm_lr, seed=seed)
    checkpoint = str(Path(workdir) / f"pretrained_{seed}.pt")
    torch.save(state, checkpoint)
    t_pre = (time.perf_counter() - t0, time.process_time() - c0)
    cls_config = bert_config(vocab, args.size, args.max_len, n_labels=len(CLASSES))
    clf, log = find_tickets(data, cls_config, checkpoint, args, seed)
    rows = []
    base = {"seed": seed, "mlm_loss": mlm_loss, "mlm_masked_acc": mlm_acc}
    dense = log.records[0]
    total = sum(m.numel() for m in encoder_masks(log.masks[1]).values())

    def kept(masks):  # the encoder's Linear weights kept
        return sum(int(m.sum()) for m in encoder_masks(masks).values())

    for r in range(len(clf.rounds_)):
        rows.append({**base, "arm": "full fine-tune" if r == 0 else "ticket",
                     "round": r, "sparsity": r / 10,
                     "encoder_weights": total if r == 0 else kept(log.masks[r]),
                     **log.records[r]})
    for s in SPARSITIES:
        r = int(round(10 * s))
        for arm, rec in controls(log, r, data, cls_config, checkpoint, args,
                                 seed).items():
            rows.append({**base, "arm": arm, "round": r, "sparsity": s,
                         "encoder_weights": kept(log.masks[r]), **rec})
    elapsed = (time.perf_counter() - t0, time.process_time() - c0)
    print(f"  seed {seed}: MLM {t_pre[1]:.0f}s CPU (loss {mlm_loss:.2f}, masked acc "
          f"{mlm_acc:.3f}); full fine-tune test acc {dense['test_acc']:.4f}; "
          f"total {elapsed[0]:.0f}s wall, {elapsed[1]:.0f}s CPU", flush=True)
    frame = pd.DataFrame(rows)
    frame["encoder_weights_total"] = total
    frame["cpu_s_seed"] = round(elapsed[1], 1)
    return frame


def table(results) -> pd.DataFrame:
    """Test accuracy, mean and std over seeds, per arm and sparsity (the full
    fine-tune repeated as the reference at every sparsity)."""
    rows = []
    dense = results[results["arm"] == "full fine-tune"]["test_acc"]
    for s in SPARSITIES:
        row = {"sparsity": s, "full fine-tune": dense.mean(),
               "full fine-tune std": dense.std(ddof=0)}
        for arm in ARMS[1:]:
            acc = results[(results["arm"] == arm)
                          & np.isclose(results["sparsity"], s)]["test_acc"]
            row[arm], row[f"{arm} std"] = acc.mean(), acc.std(ddof=0)
        rows.append(row)
    return pd.DataFrame(rows)


def print_table(tab, n_seeds) -> None:
    print(f"\ntest accuracy, mean +- std over {n_seeds} seed(s)")
    print(f"{'sparsity':>8s}" + "".join(f"{a:>20s}" for a in ARMS))
    for _, row in tab.iterrows():
        print(f"{100 * row['sparsity']:7.0f}%" + "".join(
            f"{row[a]:>12.4f} +- {row[a + ' std']:.3f}" for a in ARMS))


def write_outputs(results, out, name):
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / f"{name}.csv", index=False)
    tab = table(results)
    tab.to_csv(out / f"{name}_table.csv", index=False)
    print_table(tab, results["seed"].nunique())
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: a tiny model, few steps, 1 seed")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--mlm-steps", type=int, default=None)
    parser.add_argument("--mlm-lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=None,
                        help="fine-tuning epochs per round")
    parser.add_argument("--lr", type=float, default=3e-4, help="fine-tuning lr")
    parser.add_argument("--head", choices=["rewound", "trained"], default="rewound",
                        help="the pooler and classifier between rounds: rewound "
                        "to their initialization like the body (default; the "
                        "paper's Algorithm 1 trains f(x; m*theta_0, gamma_0) "
                        "each round) or keep_trained")
    parser.add_argument("--merge", nargs="+", default=None, metavar="CSV",
                        help="merge the CSVs of runs of other seeds (e.g. run "
                        "in parallel with --first-seed) into one table")
    parser.add_argument("--out", default=None, help=OUT_HELP)
    args = parser.parse_args(argv)
    if args.merge:
        results = pd.concat([pd.read_csv(p) for p in args.merge], ignore_index=True)
        if results.duplicated(["seed", "arm", "round"]).any():
            parser.error("--merge: the runs share a seed")
        name = Path(args.merge[0]).stem
        return write_outputs(results.sort_values("seed", kind="stable"),
                             Path(args.out) if args.out else OUTPUT, name)
    torch.set_num_threads(1)  # reproducible sums; the machine is shared
    global PROGRESS
    PROGRESS = not args.quick
    warnings.filterwarnings("ignore", message=".*does not beat.*")
    if args.quick:
        per_class, vocab, args.size, args.max_len = 40, 400, (32, 1, 2), 32
        seeds, args.mlm_steps = args.seeds or 1, args.mlm_steps or 20
        args.epochs, name = args.epochs or 1, "reproduce_bert_quick"
    else:
        per_class, vocab, args.size, args.max_len = 10_000, 3000, (64, 2, 4), 48
        seeds, args.mlm_steps = args.seeds or 3, args.mlm_steps or 1500
        args.epochs, name = args.epochs or 5, "reproduce_bert"
    out = Path(args.out) if args.out else OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    split, pretrain_text = build_corpus(per_class)
    tok = train_tokenizer(pretrain_text, vocab, args.max_len)
    data = tuple((encode(tok, [s for s, _ in split[p]]),
                  np.array([y for _, y in split[p]], dtype=np.int64))
                 for p in ("train", "valid", "test"))
    pre_enc = encode(tok, pretrain_text)
    print(f"tiny BERT {args.size} (hidden, layers, heads), vocab "
          f"{tok.get_vocab_size()}, {len(pretrain_text)} MLM sentences x "
          f"{args.mlm_steps} steps; task {len(CLASSES)} classes, "
          f"{len(data[0][1])}/{len(data[1][1])}/{len(data[2][1])} sentences, "
          f"{args.epochs} epochs per round, {seeds} seed(s)", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        frames = [run_seed(data, pre_enc, tok.get_vocab_size(), args, seed, workdir)
                  for seed in range(args.first_seed, args.first_seed + seeds)]
    write_outputs(pd.concat(frames, ignore_index=True), out, name)
    print(f"\ntotal {time.perf_counter() - t0:.0f}s wall, "
          f"{time.process_time() - c0:.0f}s CPU; wrote {out}/{name}*")


if __name__ == "__main__":
    main()
