-- interactions_video cost an index insertion on every status change of every comment
-- (each claim and each record writes a new row version); its one reader, failing the
-- comments of a video that failed for good, is rare and now goes through
-- interactions_due with the user's id.
drop index if exists interactions_video;
