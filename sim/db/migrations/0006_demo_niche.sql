-- The account's niche (cooking, fitness, ...): what its demo content is about.
-- null: derived from the seed (rows from before niches existed, and PUTs without one).
alter table demo_users add column niche text;
