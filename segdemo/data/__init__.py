"""Inputs: label sets, decoding uploaded images, the datasets on disk, the sample
gallery, Penn-Fudan (instances), and the one downloader (with its progress reporter) used for weights and data."""
