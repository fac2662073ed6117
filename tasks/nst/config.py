"""Schema of the style-transfer task (``conf/nst.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.common.config import DataConfig, RunConfig, register_schema


@dataclass
class NSTDataConfig(DataConfig):
    """The shared ``data`` section plus the four image folders of style transfer.

    ``name``: ``image_folders`` (the folders below, as they are) or ``skimage_demo`` (the folders are first written
    from the photos and textures that ship in scikit-image, plus generated colour patterns). ``image_size`` is the
    crop side; images are first resized to ``load_size``×``load_size`` (aspect ratio not kept, as the official
    code). Folders are searched recursively for common image extensions.
    """

    name: str = "image_folders"  # image_folders | skimage_demo
    content_dir: str = "${data.root}/coco/train2017"  # training content images (paper: MS-COCO train2017)
    style_dir: str = "${data.root}/wikiart/train"  # training style images (paper: WikiArt); the fixed id set of sain
    val_content_dir: str = "${data.root}/coco/val2017"  # held-out content images
    val_style_dir: str = "${data.root}/wikiart/test"  # held-out style images (sain validates on style_dir instead)
    load_size: int = 512  # resize to load_size × load_size before cropping
    image_size: int = 256  # crop side (random crops for training, centre crops for validation)


@dataclass
class NSTModelConfig:
    vgg_path: str | None = None  # vgg_normalised.pth of pytorch-AdaIN; null = seeded random stand-in encoder
    stand_in_seed: int = 0  # seed of the random stand-in encoder (the same for every run seed, so runs compare)
    decoder_path: str | None = None  # start the decoder from official-layout weights (null = PyTorch default init)
    detach_target: bool = False  # stop the content-loss gradient into (Sa)AdaIN's own target (ablation; not official)
    sain_init_from_styles: bool = True  # sain: start style i's affine at its relu4_1 (std, mean), i.e. as AdaIN


@dataclass
class NSTTrainConfig:
    iterations: int = 160_000
    batch_size: int = 8  # global batch (split over DDP processes); content and style batches have this size
    lr: float = 1.0e-4  # Adam
    lr_decay: float = 5.0e-5  # inverse-time decay: lr_t = lr / (1 + lr_decay · t)
    content_weight: float = 1.0
    style_weight: float = 10.0
    final_window: int = 1000  # train_content / train_style = mean over the last this many iterations


@dataclass
class NSTValConfig:
    every: int = 10_000  # iterations between validations (also at iteration 0 and at the end)
    num_pairs: int | None = None  # content-style pairs; null = min(#val content, #val style) as the official code
    batch_size: int = 8
    grid_contents: int = 4  # rows of the sample grid (validation content images)
    grid_styles: int = 4  # columns of the sample grid (validation styles)


@dataclass
class NSTConfig(RunConfig):
    task: str = "nst"
    data: NSTDataConfig = field(default_factory=NSTDataConfig)
    model: NSTModelConfig = field(default_factory=NSTModelConfig)
    train: NSTTrainConfig = field(default_factory=NSTTrainConfig)
    val: NSTValConfig = field(default_factory=NSTValConfig)


register_schema("nst", NSTConfig)
