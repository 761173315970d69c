"""GIS file formats in and out: GeoPackage, Shapefile, GMNS, OpenStreetMap PBF."""
