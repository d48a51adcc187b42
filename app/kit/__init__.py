"""Building blocks every feature may use: they import no feature package and no settings
(settings reach them as arguments)."""
