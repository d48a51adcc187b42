-- The PostgreSQL hard cases the round trip must keep exactly.
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE SCHEMA sales;
CREATE SCHEMA "Ünïcødé";
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE sales.money_pair AS (amount numeric(12,2), currency char(3));
CREATE SEQUENCE sales.invoice_no START 1000 INCREMENT 7;
SELECT nextval('sales.invoice_no') FROM generate_series(1, 5);
CREATE SEQUENCE sales.unused_seq;
CREATE TABLE people (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    nick citext,
    feeling mood DEFAULT 'ok',
    tags text[],
    matrix int[][],
    doc jsonb,
    attrs hstore,
    photo bytea,
    born date,
    seen timestamptz,
    ratio double precision,
    price numeric(20,6)
);
INSERT INTO people (name, nick, feeling, tags, matrix, doc, attrs, photo, born, seen, ratio, price)
SELECT 'person ' || g, 'Nick' || g, (ARRAY['sad','ok','happy']::mood[])[1 + g % 3],
       ARRAY['a' || g, 'b,"q"', NULL], ARRAY[[g, g + 1], [g + 2, g + 3]],
       jsonb_build_object('n', g, 'nested', jsonb_build_array(1, 'two', null, true), 'ü', 'ß'),
       hstore('k' || g, 'v' || g), decode(md5(g::text) || '00ff', 'hex'),
       DATE '2000-01-01' + g, TIMESTAMPTZ '2020-02-29 12:34:56.789+02' + g * INTERVAL '1 hour',
       g / 7.0, g * 1.000001
FROM generate_series(1, 2000) AS g;
INSERT INTO people (name, photo, doc) VALUES ('nulls', '\x'::bytea, 'null'::jsonb),
    (E'tab\there\nnewline \\ backslash ''quote''', decode('000102fffe', 'hex'), '{}');
CREATE TABLE sales.invoices (
    no bigint PRIMARY KEY DEFAULT nextval('sales.invoice_no'),
    person_id bigint REFERENCES people (id) ON DELETE CASCADE,
    total sales.money_pair,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO sales.invoices (person_id, total, created_at)
SELECT 1 + g % 2000, ROW(g * 1.5, 'EUR')::sales.money_pair, TIMESTAMPTZ '2024-01-01 00:00+00' + g * INTERVAL '1 min'
FROM generate_series(1, 3000) AS g;
CREATE TABLE sales.audit (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, what text, at bigint);
CREATE TABLE "Ünïcødé"."Tâble ñame" ("Çolumn" text, "日本語" int);
INSERT INTO "Ünïcødé"."Tâble ñame" VALUES ('ça va', 1), ('日本', 2), ('emoji 🎉', 3);
CREATE FUNCTION sales.add_tax(amount numeric, rate numeric DEFAULT 0.2) RETURNS numeric
    LANGUAGE sql IMMUTABLE AS $$ SELECT round(amount * (1 + rate), 2) $$;
CREATE FUNCTION sales.log_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sales.audit (what, at) VALUES ('invoice ' || NEW.no, NEW.no);
    RETURN NEW;
END $$;
CREATE PROCEDURE sales.bump(n int) LANGUAGE plpgsql AS $$ BEGIN PERFORM n + 1; END $$;
CREATE TRIGGER invoice_logged AFTER INSERT ON sales.invoices
    FOR EACH ROW EXECUTE FUNCTION sales.log_invoice();
INSERT INTO sales.invoices (person_id, total) VALUES (1, ROW(10, 'USD')::sales.money_pair);
CREATE VIEW sales.big_invoices AS SELECT no, (total).amount AS amount FROM sales.invoices
    WHERE (total).amount > 1000;
CREATE MATERIALIZED VIEW sales.per_person AS
    SELECT person_id, count(*) AS n, sum((total).amount) AS amount FROM sales.invoices
    GROUP BY person_id;
CREATE INDEX per_person_n ON sales.per_person (n);
CREATE INDEX people_doc ON people USING gin (doc);
CREATE TABLE parted (id int, region text) PARTITION BY LIST (region);
CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
INSERT INTO parted SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END FROM generate_series(1, 100) g;
COMMENT ON TABLE people IS 'the people, ünïcode comment';
SELECT lo_from_bytea(0, convert_to(repeat('large object ', 1000), 'UTF8'));
SELECT lo_from_bytea(0, decode('deadbeef', 'hex'));
