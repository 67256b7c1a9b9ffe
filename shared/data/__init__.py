"""Reference data shipped with the library; README.md gives each file's source and licence."""
