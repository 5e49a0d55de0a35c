"""Write ``resnet34.onnx``: a torchvision-style ResNet-34 with seeded random weights.

    .venv/bin/python examples/resnet34.py                 # -> build/resnet34.onnx
    .venv/bin/python examples/resnet34.py -o /tmp/r34.onnx
    nnlcc compile build/resnet34.onnx --report-only

The network is written here in torch (no torchvision, no downloads): a 7x7/2 stem conv, batch
norm, ReLU, 3x3/2 max pool, four stages of BasicBlocks (3, 4, 6, 3 blocks of 64, 128, 256, 512
channels, a 1x1/2 conv + BN on the shortcut where the shape changes), global average pool and
a 1000-way linear layer: 36 convolutions + 1 dense layer, 21.8 M weights once batch norm is
folded.  The input is 3x224x224.

Weights are He-initialized from a fixed seed and every BatchNormalization gets non-trivial
affine parameters and running statistics (the export keeps the BN nodes, so nnlcc's folding is
exercised).  The ~87 MB .onnx is generated on demand and never committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from nnlcc.examples.onnx_export import export_onnx

SEED = 34
INPUT_SHAPE = (3, 224, 224)
STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))
#: relative to the working directory (like ``nnlcc compile``'s default output folder), not to
#: this file, which may be installed in site-packages as ``nnlcc.examples.resnet34``
DEFAULT_OUT = Path("build") / "resnet34.onnx"


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + skip)


class ResNet34(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        stages = []
        for i, (cout, blocks) in enumerate(STAGES):
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(cin, cout, 2 if (b == 0 and i > 0) else 1))
                cin = cout
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(torch.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def seeded_model(seed: int = SEED) -> ResNet34:
    """He-initialized weights; BN running stats and affine parameters drawn at random."""
    torch.manual_seed(seed)
    model = ResNet34()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01, generator=g)
                nn.init.zeros_(m.bias)
    return model.eval()


def export(path: Path = DEFAULT_OUT, seed: int = SEED) -> Path:
    """Write the ONNX file (batch axis dynamic, BN nodes kept) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model = seeded_model(seed)
    tmp = path.with_suffix(".onnx.tmp")
    export_onnx(
        model,
        INPUT_SHAPE,
        tmp,
        input_name="image",
        output_name="logits",
        keep_batchnorm=True,
    )
    tmp.replace(path)
    return path


def ensure(path: Path = DEFAULT_OUT) -> Path:
    """``path``, exported first if missing."""
    return path if path.is_file() else export(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args()
    out = export(args.output, args.seed)
    n = sum(p.numel() for p in seeded_model(args.seed).parameters() if p.dim() > 1)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {n / 1e6:.2f} M matrix weights)")


if __name__ == "__main__":
    main()
