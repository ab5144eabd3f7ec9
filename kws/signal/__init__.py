"""Signal: audio in, speech frames, levels, keyword features, unit vectors."""
