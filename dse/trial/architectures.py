"""Torch-free facts about the datasets and model architectures a trial can use.

The config schema validates ``model.keep_digital`` names, detector sizes and input sizes with
these facts without importing torch; :mod:`dse.trial.models` builds modules whose analog-capable
layers carry exactly the names listed here (a test checks the two agree).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """Shape of one example and the number of classes of a dataset."""

    channels: int
    """Image channels (1 for grayscale)."""
    height: int
    """Image height in pixels."""
    width: int
    """Image width in pixels."""
    classes: int
    """Number of classes (labels are 0 .. classes - 1)."""

    @property
    def features(self) -> int:
        """Number of input values per example (channels × height × width)."""
        return self.channels * self.height * self.width


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(1, 8, 8, 10),
    "mnist": DatasetInfo(1, 28, 28, 10),
    "fashion-mnist": DatasetInfo(1, 28, 28, 10),
    "cifar10": DatasetInfo(3, 32, 32, 10),
    "svhn": DatasetInfo(3, 32, 32, 10),
}
"""Every dataset a trial can name, by name."""

MODELS = ("fcnn", "lenet5", "vgg8", "resnet18")
"""Every model architecture a trial can name."""

DEFAULT_ACTIVATION = {"fcnn": "relu", "lenet5": "tanh", "vgg8": "relu", "resnet18": "relu"}
"""The activation each architecture uses when ``model.activation`` is not given."""

RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))
"""(base channels, stride of the first block) of the four ResNet-18 stages (two blocks each)."""

VGG8_CHANNELS = (48, 48, 96, 96, 144, 144)
"""Base channels of the six VGG-8 convolutions (a 2×2 max-pool after every second one)."""

VGG8_HIDDEN = 384
"""Width of VGG-8's hidden fully-connected layer."""

LENET5_CHANNELS = (16, 32)
"""Base channels of LeNet-5's two 5×5 convolutions (each followed by a 2×2 max-pool)."""

LENET5_HIDDEN = 128
"""Width of LeNet-5's hidden fully-connected layer."""


def scaled(channels: int, width: float) -> int:
    """Channel count after the ``model.width`` multiplier (at least 1)."""
    return max(1, int(round(channels * width)))


def min_input_size(model: str) -> int:
    """Smallest image side the architecture accepts (its convolutions and pools need room)."""
    # lenet5: side -> side-4 -> //2 -> -4 -> //2 must stay >= 1, i.e. side >= 14.
    # vgg8: three 2x2 pools need side >= 8. fcnn takes any input; resnet18 pads every conv.
    return {"fcnn": 1, "lenet5": 14, "vgg8": 8, "resnet18": 1}[model]


def layer_names(model: str, hidden: tuple[int, ...] = ()) -> list[str]:
    """Names of the analog-capable (linear / convolution) layers, input to output.

    These are the module names :func:`dse.trial.models.build_model` gives those layers; they
    are what ``model.keep_digital`` accepts, and the last ``k`` of them form the detector that
    the ``detector_retrain`` algorithm retrains.
    """
    if model == "fcnn":
        return [f"fc{i + 1}" for i in range(len(hidden) + 1)]
    if model == "lenet5":
        return ["conv1", "conv2", "fc1", "fc2"]
    if model == "vgg8":
        return [f"conv{i + 1}" for i in range(len(VGG8_CHANNELS))] + ["fc1", "fc2"]
    if model == "resnet18":
        names = ["conv1"]
        in_ch = RESNET18_STAGES[0][0]
        for s, (ch, stride) in enumerate(RESNET18_STAGES):
            for b in range(2):
                prefix = f"layer{s + 1}.{b}"
                names += [f"{prefix}.conv1", f"{prefix}.conv2"]
                if b == 0 and (stride != 1 or in_ch != ch):
                    names.append(f"{prefix}.shortcut")
                in_ch = ch
        return names + ["fc"]
    raise ValueError(f"unknown model {model!r}; accepted: {', '.join(MODELS)}")
