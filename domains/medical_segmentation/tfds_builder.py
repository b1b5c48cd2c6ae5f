"""TFDS builder for Kvasir-SEG (gastrointestinal polyp segmentation), registered on import.

Why Kvasir-SEG and not DRIVE: the issue asks for a lesion set that downloads by
itself. Kvasir-SEG's 1,000 polyp images (polyps are the precursors of colorectal
cancer) come as one public zip from Simula without registration; DRIVE's official
download needs an account on grand-challenge.org, so a builder could only ever read it
from manual_dir. DRIVE is read with `--data` through the plain folder reader instead.

Offline, put `kvasir-seg.zip` or its extracted `Kvasir-SEG/` folder into the manual
folder (`<data_dir>/downloads/manual/`, or `DownloadConfig(manual_dir=...)`): it is
used instead of the download.

Kvasir-SEG has no official test split. The builder makes a reproducible 80/10/10 split:
file names sorted, permuted with numpy's default_rng(0); the first 10% are test, the
next 10% validation, the rest train (800/100/100 of the 1,000 images).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, UnidentifiedImageError

URL = "https://datasets.simula.no/downloads/kvasir-seg.zip"
HOMEPAGE = "https://datasets.simula.no/kvasir-seg/"
ARCHIVE_NAME = "kvasir-seg.zip"
FOLDER_NAME = "Kvasir-SEG"
SPLIT_SEED = 0
SPLIT_FRACTIONS = {"test": 0.1, "validation": 0.1}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

CITATION = """\
@inproceedings{jha2020kvasir,
  title={Kvasir-SEG: A Segmented Polyp Dataset},
  author={Jha, Debesh and Smedsrud, Pia H. and Riegler, Michael A. and Halvorsen, P{\\aa}l
          and de Lange, Thomas and Johansen, Dag and Johansen, H{\\aa}vard D.},
  booktitle={MultiMedia Modeling (MMM 2020)},
  pages={451--462},
  year={2020},
  publisher={Springer},
  doi={10.1007/978-3-030-37734-2_37}
}
"""

LICENSE = (
    "Kvasir-SEG terms of use (Simula): the use of the Kvasir-SEG dataset is restricted "
    "to research and educational purposes; commercial use is forbidden without prior "
    "written permission. Documents and publications that use the dataset or report "
    "results on it must cite the dataset paper."
)

DESCRIPTION = """\
Kvasir-SEG: 1,000 colonoscopy images of gastrointestinal polyps with binary masks
drawn by a medical doctor and verified by an experienced gastroenterologist (Vestre
Viken Health Trust, Norway). Images are JPEG, 332x487 to 1920x1072 pixels. Masks are
stored here as 0/1 PNG after thresholding the original JPEG masks at 127 (JPEG adds
in-between grey levels at the edges). Splits: a reproducible 80/10/10 split of the
sorted file names permuted with numpy default_rng(0), since the dataset has none.
"""


def split_names(names: list[str]) -> dict[str, list[str]]:
    """The builder's deterministic train/validation/test split of `names`."""
    ordered = sorted(names)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(ordered))
    shuffled = [ordered[i] for i in order]
    n_test = round(SPLIT_FRACTIONS["test"] * len(shuffled))
    n_val = round(SPLIT_FRACTIONS["validation"] * len(shuffled))
    return {
        "test": sorted(shuffled[:n_test]),
        "validation": sorted(shuffled[n_test : n_test + n_val]),
        "train": sorted(shuffled[n_test + n_val :]),
    }


def _pairs(root: Path) -> dict[str, tuple[Path, Path]]:
    images = {p.stem: p for p in (root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {p.stem: p for p in (root / "masks").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    for stem in sorted(set(images) ^ set(masks)):
        lone = images.get(stem) or masks[stem]
        raise ValueError(f"{lone}: no matching {'mask' if stem in images else 'image'}.")
    return {stem: (images[stem], masks[stem]) for stem in images}


def _find_root(folder: Path) -> Path:
    """The folder holding images/ and masks/: `folder` itself or its Kvasir-SEG/."""
    for candidate in (folder / FOLDER_NAME, folder):
        if (candidate / "images").is_dir() and (candidate / "masks").is_dir():
            return candidate
    raise ValueError(
        f"{folder}: no {FOLDER_NAME}/images and {FOLDER_NAME}/masks inside; "
        f"expected the layout of {ARCHIVE_NAME}."
    )


class KvasirSeg(tfds.core.GeneratorBasedBuilder):
    """Kvasir-SEG polyp segmentation: image, binary mask, file name."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: 80/10/10 split, masks thresholded to 0/1."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Offline: download {URL} elsewhere and put {ARCHIVE_NAME} (or the extracted
{FOLDER_NAME}/ folder with images/ and masks/) into the manual folder
(`<data_dir>/downloads/manual/` by default). Online, nothing is needed."""

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg"),
                    "segmentation_mask": tfds.features.Image(
                        shape=(None, None, 1), encoding_format="png"
                    ),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "segmentation_mask"),
            homepage=HOMEPAGE,
            citation=CITATION,
            license=LICENSE,
        )

    def _source_folder(self, dl_manager) -> Path:
        """The extracted archive: from manual_dir when it holds one, else downloaded."""
        try:
            manual = Path(dl_manager.manual_dir)
        except AssertionError:  # no manual folder, or an empty one
            manual = None
        if manual is not None:
            if (manual / ARCHIVE_NAME).is_file():
                return Path(dl_manager.extract(manual / ARCHIVE_NAME))
            if (manual / FOLDER_NAME).is_dir() or (manual / "images").is_dir():
                return manual
        return Path(dl_manager.download_and_extract(URL))

    def _split_generators(self, dl_manager):
        root = _find_root(self._source_folder(dl_manager))
        pairs = _pairs(root)
        return {
            split: self._generate_examples(pairs, names)
            for split, names in split_names(list(pairs)).items()
        }

    def _generate_examples(self, pairs: dict[str, tuple[Path, Path]], names: list[str]):
        for name in names:
            image_path, mask_path = pairs[name]
            try:
                with Image.open(image_path) as image:
                    size = image.size
                    jpeg = image.format == "JPEG" and image.mode == "RGB"
                    pixels = None if jpeg else np.asarray(image.convert("RGB"))
                with Image.open(mask_path) as mask:
                    mask = np.asarray(mask.convert("L"))
            except (OSError, UnidentifiedImageError) as error:
                raise ValueError(f"{image_path} or {mask_path}: unreadable ({error}).") from None
            if (mask.shape[1], mask.shape[0]) != size:
                raise ValueError(
                    f"{mask_path}: size {mask.shape[1]}x{mask.shape[0]} differs from its "
                    f"image {image_path.name} ({size[0]}x{size[1]})."
                )
            yield (
                name,
                {
                    # RGB JPEGs are stored byte for byte; anything else is re-encoded.
                    "image": image_path if jpeg else pixels,
                    "segmentation_mask": (mask > 127).astype(np.uint8)[..., None],
                    "file_name": name,
                },
            )
