"""Evaluating enhancers: classical baselines (``baselines``), evaluation reports (``report``, with
``tables`` and ``report_files``) and the quality benchmark's protocol (``quality``).

The fibre segmenter is `ssp_keras.segmentation`; the metrics, full-reference ones included, are
`ssp_keras.metrics`. ``csnet``, ``segmenter``, ``segmenter_inference``, ``segmenter_training`` and
``segmentation_loss`` here re-export `ssp_keras.segmentation` for one release.
"""
