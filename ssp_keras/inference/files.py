"""The file loop: read every input image, transform each frame, write the results safely.

`process_image_files` is shared by `ssp_keras.inference.enhance.enhance_files` (a local generator)
and the serving client's ``predict_files`` (a server): one process at a time owns the output
folder, every frame of a stack is transformed, alpha is passed through, outputs keep the source's
sample type where the format holds it, DICOM results are derived DICOMs, writes are atomic.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple

import numpy as np

from ssp_keras.data.formats import DICOM_FORMATS, extension_of
from ssp_keras.data.samples import output_bit_depth
from ssp_keras.errors import InputError, OutputError
from ssp_keras.inference.outputs import plan_outputs

if TYPE_CHECKING:
    from ssp_keras.data.reading import ImageInfo

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class FilesResult:
    """What `enhance_files` did: ``written`` files, ``skipped`` (path, reason) pairs, ``frames``
    enhanced in all (a TIFF stack or multi-frame DICOM counts each of its frames)."""

    written: List[str]
    skipped: List[Tuple[str, str]]
    seconds: float
    frames: int = 0


def process_image_files(
    inputs: Sequence[str],
    out_dir: str,
    transform: Callable[[np.ndarray, "ImageInfo"], Tuple[np.ndarray, Optional[int]]],
    channels: Optional[int],
    progress: Optional[Callable[[str], None]] = None,
    dicom_as: str = "dicom",
    overwrite: bool = False,
    model_name: str = "SSP-Net",
    model_source: Optional[str] = None,
    purpose: str = "ssp-net enhance",
) -> FilesResult:
    """Reads every input image, applies ``transform`` to each frame and writes the results under ``out_dir``.

    The shared loop of `enhance_files` and of the serving client's ``predict_files``.
    transform: ``(frame float32 [H, W, C] in [0, 1], ImageInfo) -> (result [H, W, C], bit_depth)``
      where ``bit_depth`` None means "as the source had it": its own sample type and range where
      the output format holds it (float TIFF stays float, int32 TIFF int32 in its range,
      `ssp_keras.data.samples.output_sample_format`), else 16 or 8 bits (`output_bit_depth`). It
      is called once per frame: every page of a multi-page TIFF and every frame of a multi-frame
      DICOM is enhanced and written (a multi-page TIFF with the same page count and sample type,
      a multi-frame DICOM with the same NumberOfFrames).
    channels: read images with this many channels (1 or 3; None keeps the file's). A file whose
      colour is reduced (RGB, palette or CMYK into a gray model) or converted (CMYK into RGB) gets
      one warning naming it; an alpha channel is passed through unchanged, never enhanced.
    progress: called with one line per file (``[3/14] in.png -> out/in.png (0.21 s)``).
    dicom_as, overwrite: see `plan_outputs`. DICOM outputs are derived DICOMs
      (`ssp_keras.data.dicom.write_derived_dicom`) whose SeriesDescription names ``model_name``; the
      files of one source series share one new series. ``model_source`` (what ``--model`` said)
      goes into the DerivationDescription.
    purpose: what this process does, shown to another one that finds ``out_dir`` claimed
      (`ssp_keras.utils.locks.claim_folder`: one process at a time writes into a folder).
    Unreadable files are skipped with a warning naming them; `InputError` when none was readable;
    `OutputError` naming the file, the cause and what was written before, when an output cannot
    be written (a full disk): nothing half-written is left.
    """
    from ssp_keras.utils.locks import claim_folder

    plan_outputs(inputs, out_dir, dicom_as=dicom_as, overwrite=overwrite)  # before the folder is made
    with claim_folder(out_dir, purpose):
        jobs = plan_outputs(inputs, out_dir, dicom_as=dicom_as, overwrite=overwrite)  # again, as its owner
        return _process_jobs(jobs, out_dir, transform, channels, progress, model_name, model_source)


def _process_jobs(jobs, out_dir, transform, channels, progress, model_name, model_source) -> FilesResult:
    from ssp_keras.data.decoding import UnreadableImageError
    from ssp_keras.data.reading import read_frames_and_alpha

    started = time.perf_counter()
    written: List[str] = []
    skipped: List[Tuple[str, str]] = []
    series_uids: dict = {}  # source SeriesInstanceUID -> the derived series' UID
    total_frames = 0
    for number, job in enumerate(jobs, start=1):
        file_started = time.perf_counter()
        try:
            frames, alphas, info = read_frames_and_alpha(job.source, channels)
        except UnreadableImageError as error:
            logger.warning("skipping unreadable image '%s': %s", job.source, error.reason)
            skipped.append((job.source, error.reason))
            continue
        note = colour_note(job.source, info, channels)
        if note:
            logger.warning("%s", note)
        results: List[np.ndarray] = []
        bit_depth = None
        while frames:  # pop: each input frame is released once enhanced
            result, depth = transform(frames.pop(0), info)
            results.append(result)
            bit_depth = depth if bit_depth is None else bit_depth
        try:
            outputs = _write_results(job, results, alphas, info, bit_depth, model_name, model_source, series_uids)
        except OSError as error:
            raise OutputError(
                f"cannot write '{getattr(error, 'filename', None) or job.destination}': {error.strerror or error}; "
                f"{len(written)} of {len(jobs)} output file(s) were written into '{out_dir}' before it, none is "
                "half-written"
            ) from error
        written.extend(outputs)
        total_frames += len(results)
        if progress is not None:
            target = outputs[0] if len(outputs) == 1 else f"{outputs[0]} ... {os.path.basename(outputs[-1])}"
            frames_note = f"{len(results)} frames, " if len(results) > 1 else ""
            progress(
                f"[{number}/{len(jobs)}] {job.source} -> {target} "
                f"({frames_note}{time.perf_counter() - file_started:.2f} s)"
            )
    if skipped:
        logger.warning("skipped %d of %d files (named above)", len(skipped), len(jobs))
    if not written:
        raise InputError(f"no readable image among {len(jobs)} input file(s); first: '{skipped[0][0]}'")
    return FilesResult(written, skipped, time.perf_counter() - started, total_frames)


def _write_results(job, results, alphas, info, bit_depth, model_name, model_source, series_uids) -> List[str]:
    """Writes one input's results (with its alpha channels) where ``job`` says; the files written."""
    from ssp_keras import __version__
    from ssp_keras.data.dicom import write_derived_dicom
    from ssp_keras.data.writing import write_frames
    from ssp_keras.data.samples import SampleFormat, output_sample_format

    extension = extension_of(job.destination)
    if extension in DICOM_FORMATS:
        write_derived_dicom(
            job.destination,
            results,
            source=job.source,
            series_description=f"SSP-Net enhanced ({model_name})",
            derivation_description=(
                f"Enhanced with SSP-Net (ssp-keras {__version__}), model '{model_source or model_name}'; "
                "pixel values rescaled to the source's stored range"
            ),
            series_uid=series_uids,
        )
        return [job.destination]

    def sample_format(destination):
        if bit_depth is not None:
            return SampleFormat.of_bit_depth(bit_depth)
        if info.format == "dicom":  # (DICOM as PNG) its stored bits, not pydicom's float samples
            return SampleFormat.of_bit_depth(output_bit_depth(destination, info.bit_depth))
        return output_sample_format(destination, info.sample_format, info.bit_depth)

    if job.frame_destinations is not None and len(job.frame_destinations) == len(results):
        for path, result, alpha in zip(job.frame_destinations, results, alphas):
            write_frames(path, [result], sample_format=sample_format(path), alphas=[alpha])
        return list(job.frame_destinations)
    if len(results) > 1 and extension not in (".tif", ".tiff"):
        raise InputError(f"'{job.source}' has {len(results)} frames but '{job.destination}' holds one")
    write_frames(job.destination, results, sample_format=sample_format(job.destination), alphas=alphas)
    return [job.destination]


def colour_note(path: str, info: "ImageInfo", channels: Optional[int]) -> Optional[str]:
    """One line when the model's ``channels`` change what a file's colour is (None: no change).

    A gray model reduces colour (RGB, palette, CMYK...) to its BT.601 luma, and the output is gray;
    an RGB model converts CMYK and other colour models to RGB, and replicates gray. Gray stored as
    RGB (three equal channels) loses nothing and gets no note. An alpha channel is mentioned: it is
    passed through unchanged.
    """
    alpha = "; its alpha channel is passed through unchanged" if info.alpha else ""
    if channels == 1 and not info.gray_content:
        return (f"'{path}' is {info.colour} colour: the 1-channel model enhances its BT.601 luma and the output "
                f"is gray{alpha}")
    if channels == 3 and info.colour not in ("RGB", "gray"):
        return f"'{path}' is {info.colour}: converted to RGB for the 3-channel model; the output is RGB{alpha}"
    if channels == 3 and info.channels == 1:
        return f"'{path}' is gray: replicated to RGB for the 3-channel model; the output is RGB{alpha}"
    return None
