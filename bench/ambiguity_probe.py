"""Does the model already *see* ambiguity? A linear probe on its frozen hidden states.

For every item, one forward pass of the serving prompt (notes + question) and the hidden state at
the position where the reply would start, at each layer. A logistic regression fitted on the train
split predicts "ambiguous?" on the dev split. If dev accuracy is well above 0.5, the information the
ask-or-answer decision needs is in the model already and LoRA training only has to route it to the
first token (docs/LEARNING.md); if it is near 0.5, no reward weighting will teach "when to ask".

Usage: .venv/bin/python bench/ambiguity_probe.py [--model PATH] [--every 3]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.items import load_items  # noqa: E402
from bench.ask_probe import first_turn_ids, load_model  # noqa: E402


def last_position_states(model, tokenizer, items):
    import torch

    states, labels = [], []
    for item in items:
        with torch.no_grad():
            hidden = model(first_turn_ids(tokenizer, item), output_hidden_states=True).hidden_states
        states.append(torch.stack([h[0, -1] for h in hidden]))
        labels.append(float(item.ambiguous))
    return torch.stack(states), torch.tensor(labels)


def probe_accuracy(train_x, train_y, dev_x, dev_y, l2: float = 1e-2) -> tuple[float, float]:
    """L2-regularized logistic regression (LBFGS) on standardized features; (train, dev) accuracy."""
    import torch

    mu, sd = train_x.mean(0), train_x.std(0) + 1e-5
    a, b = (train_x - mu) / sd, (dev_x - mu) / sd
    w = torch.zeros(a.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(a @ w + bias, train_y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (((a @ w + bias) > 0).float() == train_y).float().mean().item(), \
            (((b @ w + bias) > 0).float() == dev_y).float().mean().item()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    p.add_argument("--train-items", type=Path, default=REPO / "agent" / "data" / "train.jsonl")
    p.add_argument("--dev-items", type=Path, default=REPO / "agent" / "data" / "dev.jsonl")
    p.add_argument("--every", type=int, default=3, help="probe every k-th layer")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    tokenizer, model = load_model(args.model, args.threads)
    train_x, train_y = last_position_states(model, tokenizer, load_items(args.train_items))
    dev_x, dev_y = last_position_states(model, tokenizer, load_items(args.dev_items))
    print(f"model: {model.name_or_path}   train {len(train_y)} items, dev {len(dev_y)} items, "
          f"dev share ambiguous {dev_y.mean().item():.2f}")
    print("| layer | train accuracy | dev accuracy |\n|---|---|---|")
    for layer in range(0, train_x.shape[1], args.every):
        tr, dv = probe_accuracy(train_x[:, layer], train_y, dev_x[:, layer], dev_y)
        print(f"| {layer} | {tr:.2f} | {dv:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
