"""Row-level security on the read-model tables, driven by a per-transaction setting.

Revision ID: 0004
Revises: 0002

The API reads the read model as the role `cartolog_reader` (`SET LOCAL ROLE`) after
`set_config('cartolog.tenant', TENANT, true)`; the policies let that role see only rows of
that tenant. Projectors and operators connect as the owner and are not affected. A
projection rebuild swaps in fresh tables, so an event trigger re-applies grants and policies
to any read-model table created or moved into `public` (where the database user may create
event triggers; otherwise `cartolog_apply_row_security()` is called after a rebuild).
"""

from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLE = "cartolog_reader"
TABLES = (
    "tenants", "datasets", "dataset_nodes", "dataset_links", "dataset_zones", "scenarios",
    "scenario_links", "scenario_zones", "simulation_runs", "link_results", "zone_results",
    "indicators", "notifications", "bi_targets", "bi_builds", "tenant_data", "bi_dashboard",
)
TABLE_ARRAY = "ARRAY[" + ", ".join(f"'{t}'" for t in TABLES) + "]"

CREATE_ROLE = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
        CREATE ROLE {ROLE} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$"""

APPLY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION cartolog_apply_row_security() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE name text;
BEGIN
    FOREACH name IN ARRAY {TABLE_ARRAY} LOOP
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

TRIGGER_FUNCTION = """
CREATE OR REPLACE FUNCTION cartolog_row_security_trigger() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
               WHERE object_type = 'table' AND schema_name = 'public') THEN
        PERFORM cartolog_apply_row_security();
    END IF;
END $$"""

CREATE_TRIGGER = """
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'cartolog_row_security')
    THEN
        CREATE EVENT TRIGGER cartolog_row_security ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
            EXECUTE FUNCTION cartolog_row_security_trigger();
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'no event trigger: call cartolog_apply_row_security() after a rebuild';
END $$"""


def upgrade() -> None:
    op.execute(CREATE_ROLE)
    op.execute(f"GRANT {ROLE} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    op.execute(APPLY_FUNCTION)
    op.execute("SELECT cartolog_apply_row_security()")
    op.execute(TRIGGER_FUNCTION)
    op.execute(CREATE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP EVENT TRIGGER IF EXISTS cartolog_row_security")
    op.execute("DROP FUNCTION IF EXISTS cartolog_row_security_trigger()")
    for table in TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE IF EXISTS {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON {table} FROM {ROLE}")
    op.execute("DROP FUNCTION IF EXISTS cartolog_apply_row_security()")
