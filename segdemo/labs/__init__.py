"""Logic of the concept and lab pages (no Streamlit): each page lays these results out."""
