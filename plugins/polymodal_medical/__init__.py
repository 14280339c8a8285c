"""polymodal's medical plugin: DICOM imaging (reading, windows, series) and
de-identification to the DICOM Basic Confidentiality Profile."""
