"""Graph: Parquet triples -> canonical entities and relations -> RDF, store, NetworkX, picture; queries.

* ``canonical``  entity and relation keys, typed literals (numbers, money, dates)
* ``mentions``   ``Ele``, ``O escritor``, ``Saramago`` linked to the entity of their document
* ``sinks``      atomic files, IRIs, RDF statements, NetworkX
* ``build``      ``build_graph``: every graph output from Parquet sources, incremental and streamed
* ``query``      SPARQL on the Oxigraph store, SQL on the Parquet triples (DuckDB)
* ``view``       kg.html, the interactive picture
"""
