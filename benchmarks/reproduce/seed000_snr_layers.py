"""Paper 000: accuracy vs SNR for constant / linear / exponential step devices (fig. 5), and
accuracy and run time for 2, 3 and 4 layers (fig. 4), on MNIST with the paper's baseline
(784-256-128-10 ReLU, NLL, AnalogSGD batch 32, lr 0.05, step LR x0.5 every third of the run).

The SNR (paper 000 eq. 2, gamma = 1 / sigma^2 for |w| <= 1) applies to the forward and backward
passes (their output noise) and to the update (the pulses' cycle-to-cycle noise), as in the paper; each device also runs without any AWGN as the
noise-free reference (``snr_db: null`` in the JSON). The devices are aihwkit's default
ConstantStep / LinearStep / ExpStep devices on the gokmen_vlasov periphery.

    .venv/bin/python benchmarks/reproduce/seed000_snr_layers.py            # ~15 min on 2 busy cores
"""

from __future__ import annotations

import time

from _common import log, machine, mean_std, parse, parser, pyplot, write

from dse.trial.run import run_trial

DEVICES = {"constant": "ConstantStepDevice", "linear": "LinearStepDevice", "exponential": "ExpStepDevice"}
LAYERS = {2: [128], 3: [256, 128], 4: [512, 256, 128]}  # paper: 128-10, 256-128-10, 512-256-128-10


def trial(args, *, device: str, snr: float | None, hidden: list[int], seed: int) -> dict:
    """The baseline trial; ``snr=None`` is the noise-free reference (no AWGN anywhere)."""
    epochs = args.epochs
    hardware = {"preset": "gokmen_vlasov", "device": {"type": DEVICES[device]}}
    if snr is not None:
        hardware |= {"forward.snr_db": snr, "backward.snr_db": snr, "update.snr_db": snr}
    return {
        "dataset": {"name": "mnist", "data_dir": args.data_dir, "max_train_samples": args.train,
                    "max_test_samples": args.test},
        "model": {"name": "fcnn", "hidden": hidden, "activation": "relu"},
        "hardware": hardware,
        "training": {"epochs": epochs, "batch_size": 32, "lr": 0.05, "loss": "nll",
                     "schedule": {"type": "step", "step_size": max(1, epochs // 3), "gamma": 0.5}},
        "evaluation": {"repeats": 1, "drift_times_s": []},
        "seed": seed,
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--snr", type=float, nargs="+", default=[6, 9, 12, 18, 24, 30, 34])
    p.add_argument("--train", type=int, default=20000, help="training examples (of 60,000)")
    p.add_argument("--test", type=int, default=2000, help="test examples (of 10,000)")
    p.add_argument("--epochs", type=int, default=4)
    args = parse(p)
    if args.quick:
        args.snr, args.train, args.test, args.epochs = [9, 34], 300, 200, 1
    start = time.time()
    snr_rows = []
    for device in DEVICES:
        for snr in [*args.snr, None]:
            accs = []
            for seed in range(args.seeds):
                m = run_trial(trial(args, device=device, snr=snr, hidden=[256, 128], seed=seed),
                              num_threads=args.threads)
                accs.append(m["test_accuracy"])
            mean, std = mean_std(accs)
            snr_rows.append({"device": device, "snr_db": snr, "test_accuracy": mean, "test_accuracy_std": std,
                             "train_time_s": m["train_time_s"]})
            log(f"{device:<12} {'none' if snr is None else snr:>5} dB  test accuracy {mean:.4f} ± {std:.4f}")
    layer_rows = []
    for n_layers, hidden in LAYERS.items():
        accs, times = [], []
        for seed in range(args.seeds):
            m = run_trial(trial(args, device="exponential", snr=34, hidden=hidden, seed=seed), num_threads=args.threads)
            accs.append(m["test_accuracy"])
            times.append(m["train_time_s"])
        mean, std = mean_std(accs)
        layer_rows.append({"layers": n_layers, "hidden": hidden, "test_accuracy": mean, "test_accuracy_std": std,
                           "train_time_s": mean_std(times)[0], "n_params": m["n_params"], "macs": m["macs"]})
        log(f"{n_layers} layers {hidden}: test accuracy {mean:.4f}, train time {mean_std(times)[0]:.1f} s")
    base_time = layer_rows[-1]["train_time_s"]
    for row in layer_rows:
        row["time_vs_4_layers"] = row["train_time_s"] / base_time

    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, device in enumerate(DEVICES):
        rows = [r for r in snr_rows if r["device"] == device and r["snr_db"] is not None]
        ref = next(r for r in snr_rows if r["device"] == device and r["snr_db"] is None)
        ax1.errorbar([r["snr_db"] for r in rows], [r["test_accuracy"] for r in rows],
                     yerr=[r["test_accuracy_std"] for r in rows], marker="o", color=f"C{i}", label=f"{device} step")
        ax1.axhline(ref["test_accuracy"], color=f"C{i}", linestyle=":", linewidth=1)
    ax1.set_xlabel("SNR (dB)")
    ax1.set_ylabel("test accuracy")
    ax1.set_title("paper 000 fig. 5: accuracy vs SNR (dotted: no noise)")
    ax1.legend()
    ax2.bar([str(r["layers"]) for r in layer_rows], [r["test_accuracy"] for r in layer_rows], color="tab:blue")
    ax2.set_xlabel("layers")
    ax2.set_ylabel("test accuracy")
    twin = ax2.twinx()
    twin.plot([str(r["layers"]) for r in layer_rows], [r["train_time_s"] for r in layer_rows], "o-", color="tab:red")
    twin.set_ylabel("train time (s)", color="tab:red")
    ax2.set_title("paper 000 fig. 4: layers (exp step, 34 dB)")
    fig.tight_layout()
    write(args.out, "seed000_snr_layers", {
        "paper": "000", "experiment": "accuracy vs SNR per update model; accuracy and run time vs layers",
        "scale": {"train": args.train, "test": args.test, "epochs": args.epochs, "seeds": args.seeds},
        "snr": snr_rows, "layers": layer_rows, "elapsed_s": time.time() - start, "machine": machine(),
    }, fig)


if __name__ == "__main__":
    main()
