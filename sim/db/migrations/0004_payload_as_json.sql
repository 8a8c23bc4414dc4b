-- The payload is only ever stored and sent on as it is: every claim returns it as text.
-- As jsonb each claim rebuilt the text from the binary form (and each COPY built the
-- binary form); json keeps the document as generated, still checked to be valid JSON.
-- sim never queries inside a payload.
alter table interactions alter column payload type json using payload::text::json;
