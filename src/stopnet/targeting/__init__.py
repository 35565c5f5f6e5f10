"""Risk targeting on stored data (consignments, versioned rules, scoring, selection, feedback)."""
