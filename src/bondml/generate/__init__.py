"""Generate stage: melt-quench MD, the study's cell augmentations, DFT/LOBSTER inputs and jobs."""
