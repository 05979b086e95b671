"""What a search shows: the progress line and the plots."""
