"""Photos in, checked and split datasets out: layouts, image checks, preparation, downloads."""

from pipeline.data.download import (
    DownloadResult,
    download_petimages,
    extract_petimages,
    safe_extract_zip,
)
from pipeline.data.images import MIN_IMAGE_SIDE, ImageCheck, check_image, save_as_rgb_jpeg
from pipeline.data.layouts import SourceScan, find_class_images, scan_source
from pipeline.data.manifest import (
    MANIFEST_NAME,
    SPLITS,
    class_names,
    manifest_checksum,
    read_manifest,
    require_prepared,
    write_manifest,
)
from pipeline.data.prepare import PrepareConfig, PrepareResult, prepare_dataset
from pipeline.data.synth import write_synthetic_dataset

__all__ = [
    "MANIFEST_NAME",
    "MIN_IMAGE_SIDE",
    "SPLITS",
    "DownloadResult",
    "ImageCheck",
    "PrepareConfig",
    "PrepareResult",
    "SourceScan",
    "check_image",
    "class_names",
    "download_petimages",
    "extract_petimages",
    "find_class_images",
    "manifest_checksum",
    "prepare_dataset",
    "read_manifest",
    "require_prepared",
    "safe_extract_zip",
    "save_as_rgb_jpeg",
    "scan_source",
    "write_manifest",
    "write_synthetic_dataset",
]
