"""Quality measures every stage shares: classification metrics, the TF-IDF + logistic regression baseline, and
post-hoc calibration with the review band (decision bias, temperature, coverage at a target accuracy).

Training scores its runs with them, export fits the served model's calibration and applies the quality floor
with them, benchmarks and analysis scripts read the same definitions. numpy, scipy and scikit-learn only (no
torch); the server applies the fitted calibration from the manifest and imports none of this.
"""
