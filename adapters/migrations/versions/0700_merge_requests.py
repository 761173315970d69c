"""Merge requests list (projection `merge_requests`), under row-level security.

Revision ID: 0700
Revises: 0004

Its own revision id (not the next number) so that revisions written in parallel do not
collide; `cartolog db migrate` upgrades to every head. The row-security function is
redefined with the new table in its list, so a rebuild's swapped-in table gets the policy.
"""

from alembic import op

revision = "0700"
down_revision = "0004"
branch_labels = None
depends_on = None

ROLE = "cartolog_reader"
TABLES = (
    "tenants", "datasets", "dataset_nodes", "dataset_links", "dataset_zones", "scenarios",
    "scenario_links", "scenario_zones", "simulation_runs", "link_results", "zone_results",
    "indicators", "notifications", "bi_targets", "bi_builds", "tenant_data", "bi_dashboard",
    "merge_requests",
)

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS merge_requests (
    tenant_id TEXT NOT NULL,
    request_id UUID NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    author TEXT NOT NULL,
    fork_id UUID NOT NULL,
    parent_id UUID NOT NULL,
    verdict TEXT,
    edit_count INTEGER NOT NULL,
    conflict_count INTEGER NOT NULL,
    merged_version INTEGER,
    opened_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, request_id)
)"""

CREATE_INDEX = ("CREATE INDEX IF NOT EXISTS ix_merge_requests_updated "
                "ON merge_requests (tenant_id, updated_at)")


def apply_function(tables: tuple[str, ...]) -> str:
    array = "ARRAY[" + ", ".join(f"'{t}'" for t in tables) + "]"
    return f"""
CREATE OR REPLACE FUNCTION cartolog_apply_row_security() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE name text;
BEGIN
    FOREACH name IN ARRAY {array} LOOP
        CONTINUE WHEN to_regclass(format('public.%I', name)) IS NULL;
        EXECUTE format('GRANT SELECT ON public.%I TO {ROLE}', name);
        IF NOT (SELECT relrowsecurity FROM pg_class
                WHERE oid = to_regclass(format('public.%I', name))) THEN
            EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', name);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                       AND tablename = name AND policyname = 'tenant_isolation') THEN
            EXECUTE format('CREATE POLICY tenant_isolation ON public.%I FOR SELECT TO {ROLE} '
                           'USING (tenant_id = current_setting(''cartolog.tenant'', true))',
                           name);
        END IF;
    END LOOP;
END $$"""


def upgrade() -> None:
    op.execute(CREATE_TABLE)
    op.execute(CREATE_INDEX)
    op.execute(apply_function(TABLES))
    op.execute("SELECT cartolog_apply_row_security()")


def downgrade() -> None:
    op.execute(apply_function(TABLES[:-1]))
    op.execute("DROP TABLE IF EXISTS merge_requests")
