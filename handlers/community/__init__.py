"""The community: its YAML file (grids, buildings, places, staff) and what reads a message against it
(classification, locations, routing, working time). Shared by the features; owns no tables."""
