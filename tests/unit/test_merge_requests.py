"""Merge requests on the in-memory store: conflicts, reviews, and what a merge records."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.auth import JwksSource, TokenVerifier
from adapters.dev_issuer import DevIssuer
from domain.application import Cartolog
from domain.demand import DemandMatrixUpload, VehicleClassSpec
from domain.edits import ChangeDemandParameters, CloseLink, ModifyLink, SetZoneAttributes
from domain.errors import InvalidCommand, InvalidTransition, NotAllowed
from domain.merge_request import MERGED, UnresolvedConflicts
from domain.scenario import MAX_EDITS, Scenario
from domain.values import Actor
from tests.unit.fakes import InMemoryBlobStore
from tests.unit.test_domain import tiny_network

AUTHOR = Actor("editor-1", "c1")
REVIEWER = Actor("reviewer-1", "c2")


@pytest.fixture()
def app() -> Iterator[Cartolog]:
    application = Cartolog({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                           blobs=InMemoryBlobStore())
    application.register_tenant("acme", AUTHOR)
    application.register_tenant("rival", AUTHOR)
    yield application
    application.close()


def parent_and_fork(app: Cartolog) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    dataset = app.import_dataset("acme", "tiny", tiny_network(), AUTHOR)
    parent = app.create_scenario("acme", dataset, "base", AUTHOR)
    app.edit_scenario("acme", parent, 1, [SetZoneAttributes(1, population=150.0)], AUTHOR)
    fork = app.fork_scenario("acme", parent, "proposal", AUTHOR)
    return dataset, parent, fork


FORK_EDITS = [ModifyLink("a", capacity=2000.0), SetZoneAttributes(2, jobs=120.0),
              ChangeDemandParameters(beta=0.2)]


def test_a_merge_applies_the_forks_edits_as_if_by_hand(app: Cartolog) -> None:
    dataset, parent, fork = parent_and_fork(app)
    app.edit_scenario("acme", fork, 1, FORK_EDITS, AUTHOR)
    app.edit_scenario("acme", parent, 2, [CloseLink("c")], AUTHOR)
    request = app.open_merge_request("acme", fork, "wider link a", AUTHOR)
    app.review_merge_request("acme", request, "approved", "fine", REVIEWER)

    version = app.merge("acme", request, REVIEWER)

    by_hand = app.create_scenario("acme", dataset, "by hand", AUTHOR)
    app.edit_scenario("acme", by_hand, 1, [SetZoneAttributes(1, population=150.0),
                                           CloseLink("c")], AUTHOR)
    app.edit_scenario("acme", by_hand, 3, FORK_EDITS, AUTHOR)
    merged = app.get_scenario("acme", parent)
    assert merged.version == version == 3 + len(FORK_EDITS) + 1
    assert merged.edited_state() == app.get_scenario("acme", by_hand).edited_state()
    events = list(app.repository.event_store.get(parent, gt=3))
    assert {e.correlation_id for e in events} == {str(request)}
    assert isinstance(events[-1], Scenario.MergeApplied)
    assert events[-1].merge_request_id == request
    assert app.get_merge_request("acme", request).status == MERGED


def test_a_conflict_is_refused_until_resolved(app: Cartolog) -> None:
    _, parent, fork = parent_and_fork(app)
    app.edit_scenario("acme", fork, 1, [ModifyLink("a", capacity=2000.0),
                                        SetZoneAttributes(2, jobs=5.0)], AUTHOR)
    app.edit_scenario("acme", parent, 2, [ModifyLink("a", capacity=700.0)], AUTHOR)
    request = app.open_merge_request("acme", fork, "a", AUTHOR)
    opened = app.get_merge_request("acme", request)
    assert [c["subject"] for c in opened.conflicts] == ["link:a"]
    app.review_merge_request("acme", request, "approved", "", REVIEWER)

    with pytest.raises(UnresolvedConflicts) as refused:
        app.merge("acme", request, REVIEWER)
    assert refused.value.problems == ["link:a: unresolved conflict"]
    assert app.get_scenario("acme", parent).version == 3

    app.resolve_merge_conflict("acme", request, "link:a", "parent", AUTHOR)
    app.merge("acme", request, REVIEWER)
    merged = app.get_scenario("acme", parent)
    assert merged.link_changes["a"] == {"capacity": 700.0}
    assert merged.zone_attributes["2"] == {"jobs": 5.0}


def test_taking_the_forks_side_overrides_the_parent(app: Cartolog) -> None:
    _, parent, fork = parent_and_fork(app)
    app.edit_scenario("acme", fork, 1, [ModifyLink("a", capacity=2000.0)], AUTHOR)
    app.edit_scenario("acme", parent, 2, [ModifyLink("a", capacity=700.0)], AUTHOR)
    request = app.open_merge_request("acme", fork, "a", AUTHOR)
    app.resolve_merge_conflict("acme", request, "link:a", "fork", AUTHOR)
    app.review_merge_request("acme", request, "approved", "", REVIEWER)
    app.merge("acme", request, AUTHOR)
    assert app.get_scenario("acme", parent).link_changes["a"] == {"capacity": 2000.0}


def test_an_editor_cannot_approve_their_own_request(app: Cartolog) -> None:
    _, _, fork = parent_and_fork(app)
    app.edit_scenario("acme", fork, 1, [CloseLink("a")], AUTHOR)
    request = app.open_merge_request("acme", fork, "close a", AUTHOR)
    with pytest.raises(NotAllowed):
        app.review_merge_request("acme", request, "approved", "", Actor(AUTHOR.sub, "x"))
    assert app.get_merge_request("acme", request).version == 1


def test_merge_needs_an_approval_and_changes_requested_needs_a_comment(app: Cartolog) -> None:
    _, _, fork = parent_and_fork(app)
    app.edit_scenario("acme", fork, 1, [CloseLink("a")], AUTHOR)
    request = app.open_merge_request("acme", fork, "close a", AUTHOR)
    with pytest.raises(InvalidTransition):
        app.merge("acme", request, REVIEWER)
    with pytest.raises(InvalidCommand):
        app.review_merge_request("acme", request, "changes_requested", " ", REVIEWER)
    app.review_merge_request("acme", request, "changes_requested", "why a?", REVIEWER)
    with pytest.raises(InvalidTransition):
        app.merge("acme", request, REVIEWER)


def test_only_a_fork_with_edits_can_be_proposed_and_tenants_are_apart(app: Cartolog) -> None:
    _, parent, fork = parent_and_fork(app)
    with pytest.raises(InvalidCommand):
        app.open_merge_request("acme", parent, "not a fork", AUTHOR)
    with pytest.raises(InvalidCommand):
        app.open_merge_request("acme", fork, "nothing yet", AUTHOR)
    app.edit_scenario("acme", fork, 1, [CloseLink("a")], AUTHOR)
    request = app.open_merge_request("acme", fork, "close a", AUTHOR)
    with pytest.raises(Exception, match="not found"):
        app.get_merge_request("rival", request)


def test_archive_and_restore(app: Cartolog) -> None:
    _, parent, _ = parent_and_fork(app)
    version = app.archive_scenario("acme", parent, 2, "done", AUTHOR)
    with pytest.raises(InvalidTransition):
        app.edit_scenario("acme", parent, version, [CloseLink("a")], AUTHOR)
    version = app.restore_scenario("acme", parent, version, "again", AUTHOR)
    assert app.edit_scenario("acme", parent, version, [CloseLink("a")], AUTHOR) == version + 1


def test_a_reviewer_token_carries_the_roles_below_it(tmp_path: Path) -> None:
    issuer = DevIssuer(tmp_path / "key.pem", "iss", "aud")
    verifier = TokenVerifier(JwksSource.from_document(issuer.jwks()), "iss", "aud")
    principal = verifier.verify(issuer.issue("acme", "reviewer", sub="ben"))
    assert principal.roles == {"viewer", "editor", "reviewer"}
    assert "reviewer" in verifier.verify(issuer.issue("acme", "admin")).roles


def trucks() -> list[VehicleClassSpec]:
    return [VehicleClassSpec("car"), VehicleClassSpec("truck", pce=2.5, allowed_link_types=(1,))]


def matrix(trips: float) -> DemandMatrixUpload:
    return DemandMatrixUpload((1, 2), {"car": trips, "truck": trips / 10},
                              f"matrix {trips}".encode(), "csv")


def test_a_merge_carries_the_forks_demand_matrix_and_vehicle_classes(app: Cartolog) -> None:
    _, parent, fork = parent_and_fork(app)
    version = app.declare_vehicle_classes("acme", fork, 1, trucks(), AUTHOR)
    version = app.set_demand_matrix("acme", fork, version, matrix(900.0), AUTHOR)
    app.edit_scenario("acme", fork, version, [CloseLink("a")], AUTHOR)
    request = app.open_merge_request("acme", fork, "2040 demand", AUTHOR)
    opened = app.get_merge_request("acme", request)
    assert [e["subject"] for e in opened.edits] == ["vehicle_classes", "demand_matrix",
                                                    "link:a"]
    app.review_merge_request("acme", request, "approved", "", REVIEWER)

    version = app.merge("acme", request, REVIEWER)

    merged, proposed = app.get_scenario("acme", parent), app.get_scenario("acme", fork)
    assert merged.edited_state() == proposed.edited_state()
    assert app.demand_matrix_content("acme", parent) == b"matrix 900.0"
    events = list(app.repository.event_store.get(parent, gt=2))
    assert [type(e).__name__ for e in events] == [
        "VehicleClassesDeclared", "DemandMatrixSet", "LinkClosed", "MergeApplied"]
    assert events[-1].applied == 3 and version == events[-1].originator_version


def test_demand_matrices_changed_on_both_sides_conflict(app: Cartolog) -> None:
    _, parent, fork = parent_and_fork(app)
    app.set_demand_matrix("acme", parent, 2, matrix(10.0), AUTHOR)
    fork = app.fork_scenario("acme", parent, "proposal 2", AUTHOR)
    app.remove_demand_matrix("acme", fork, 1, AUTHOR)
    app.set_demand_matrix("acme", parent, 3, matrix(20.0), AUTHOR)
    request = app.open_merge_request("acme", fork, "gravity again", AUTHOR)
    assert [c["subject"] for c in app.get_merge_request("acme", request).conflicts] == [
        "demand_matrix"]
    app.review_merge_request("acme", request, "approved", "", REVIEWER)
    app.resolve_merge_conflict("acme", request, "demand_matrix", "fork", AUTHOR)
    app.merge("acme", request, REVIEWER)
    assert app.get_scenario("acme", parent).demand_matrix is None


def test_a_second_request_from_a_merged_fork_proposes_only_the_newer_edits(
        app: Cartolog) -> None:
    _, parent, fork = parent_and_fork(app)
    version = app.edit_scenario("acme", fork, 1, [ModifyLink("a", capacity=2000.0)], AUTHOR)
    first = app.open_merge_request("acme", fork, "wider a", AUTHOR)
    app.review_merge_request("acme", first, "approved", "", REVIEWER)
    app.merge("acme", first, REVIEWER)
    app.edit_scenario("acme", fork, version, [SetZoneAttributes(2, jobs=7.0)], AUTHOR)

    second = app.open_merge_request("acme", fork, "more jobs in 2", AUTHOR)

    opened = app.get_merge_request("acme", second)
    assert [e["subject"] for e in opened.edits] == ["zone:2"]
    assert opened.conflicts == []
    app.review_merge_request("acme", second, "approved", "", REVIEWER)
    app.merge("acme", second, REVIEWER)
    merged, proposed = app.get_scenario("acme", parent), app.get_scenario("acme", fork)
    assert merged.edited_state() == proposed.edited_state()


def test_after_a_merge_the_parents_own_later_edits_still_conflict(app: Cartolog) -> None:
    _, parent, fork = parent_and_fork(app)
    version = app.edit_scenario("acme", fork, 1, [ModifyLink("a", capacity=2000.0)], AUTHOR)
    first = app.open_merge_request("acme", fork, "wider a", AUTHOR)
    app.review_merge_request("acme", first, "approved", "", REVIEWER)
    merged_at = app.merge("acme", first, REVIEWER)
    app.edit_scenario("acme", parent, merged_at, [SetZoneAttributes(2, jobs=1.0)], AUTHOR)
    app.edit_scenario("acme", fork, version, [SetZoneAttributes(2, jobs=7.0)], AUTHOR)
    second = app.open_merge_request("acme", fork, "more jobs in 2", AUTHOR)
    assert [c["subject"] for c in app.get_merge_request("acme", second).conflicts] == [
        "zone:2"]
    with pytest.raises(InvalidCommand, match="no edits"):
        other = app.fork_scenario("acme", parent, "idle", AUTHOR)
        app.open_merge_request("acme", other, "nothing", AUTHOR)


def test_a_fork_with_more_edits_than_one_edit_list_holds_merges(app: Cartolog) -> None:
    _, parent, fork = parent_and_fork(app)
    capacities = [ModifyLink("a", capacity=1000.0 + k) for k in range(MAX_EDITS)]
    version = app.edit_scenario("acme", fork, 1, capacities, AUTHOR)
    app.edit_scenario("acme", fork, version, [CloseLink("b")], AUTHOR)
    request = app.open_merge_request("acme", fork, "many", AUTHOR)
    app.review_merge_request("acme", request, "approved", "", REVIEWER)
    version = app.merge("acme", request, REVIEWER)
    assert version == 2 + MAX_EDITS + 1 + 1
    merged, proposed = app.get_scenario("acme", parent), app.get_scenario("acme", fork)
    assert merged.edited_state() == proposed.edited_state()
