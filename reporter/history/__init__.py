"""The reporter's sustainability history: hourly accounting samples, their storage, and the
``history`` and ``report`` views over them."""
