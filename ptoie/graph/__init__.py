"""Graph: Parquet triples -> canonical entities and relations -> RDF, store, NetworkX, picture; queries.

* ``canonical``    entity and relation keys, typed literals (numbers, money, dates)
* ``mentions``     ``Ele``, ``O escritor``, ``Saramago`` linked to the entity of their document
* ``mention_pass`` the mentions of Parquet sources, a document at a time; their DuckDB join
* ``sources``      the Parquet files of triples, read as tables of the triple schema
* ``rdf``          the vocabulary and its IRIs, RDF statements, their serialisation
* ``labels``       the preferred label of each entity and relation (DuckDB)
* ``fragments``    the cache of serialised RDF fragments the RDF outputs are made of
* ``store``        the Oxigraph store, kept in step with the fragments
* ``networkx_io``  the NetworkX graph, GraphML and node-link JSON
* ``build``        ``build_graph``: every graph output from Parquet sources, incremental and streamed
* ``query``        SPARQL on the Oxigraph store, SQL on the Parquet triples (DuckDB)
* ``view``         kg.html, the interactive picture (``templates/kg.html.j2``)
"""
