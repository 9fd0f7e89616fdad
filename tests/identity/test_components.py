"""Connected components: chains, stars, several components, duplicates and self loops."""
from __future__ import annotations

import random

import pytest

from memberlake.identity.components import connected_components


def _components(spark, edges, **kwargs):
    df = spark.createDataFrame(edges, "src long, dst long")
    return {r.node: r.component for r in connected_components(df, **kwargs).collect()}


def test_two_components_with_duplicates_and_self_loops(spark):
    got = _components(spark, [(1, 2), (2, 3), (2, 3), (3, 2), (4, 4), (10, 11), (11, 12)])
    assert got == {1: 1, 2: 1, 3: 1, 10: 10, 11: 10, 12: 10}   # a lone self loop has no component edge


def test_long_chain_in_shuffled_order(spark):
    n = 2000
    nodes = list(range(n))
    random.Random(1).shuffle(nodes)                 # labels unrelated to chain position
    edges = [(nodes[i], nodes[i + 1]) for i in range(n - 1)]
    got = _components(spark, edges)
    assert len(got) == n and set(got.values()) == {0}


def test_star_and_binary_tree(spark):
    star = [(100, leaf) for leaf in range(101, 400)]
    tree = [(1000 + i, 1000 + i // 2) for i in range(2, 1048)] + [(1000, 1001)]
    got = _components(spark, star + tree)
    assert {got[x] for x in range(100, 400)} == {100}
    assert {got[x] for x in range(1000, 2048)} == {1000}


@pytest.mark.parametrize("passes, local_limit", [
    (0, None),      # large-star / small-star only
    (1, 0),         # one contraction over the partitions, the links left to the stars
    (4, 500),       # contraction over the partitions until the links fit one task
    (4, None),      # the whole graph in one task (the default below local_limit edges)
])
def test_matches_a_reference_union_find_on_a_random_graph(spark, passes, local_limit):
    rng = random.Random(7)
    edges = [(rng.randrange(3000), rng.randrange(3000)) for _ in range(2500)]
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    expected = {}
    for a, b in edges:
        if a != b:
            for x in (a, b):
                expected[x] = find(x)
    limit = {} if local_limit is None else {"local_limit": local_limit}
    got = _components(spark, edges, contract_passes=passes, **limit)
    # same partition of nodes, and each component labelled by its smallest node
    groups = {}
    for node, comp in got.items():
        groups.setdefault(comp, set()).add(node)
    for comp, members in groups.items():
        assert comp == min(members)
        assert len({expected[m] for m in members}) == 1
    assert set(got) == set(expected)
