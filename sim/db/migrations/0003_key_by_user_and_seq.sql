-- The outbox's rows are rewritten twice each (claim, record), and every new row version
-- gets an entry in every index. The id index was the one not pulling its weight: a row
-- is reached by (user_id, seq), which already had an index of its own, and ids are
-- derived from (run_id, seq), so (user_id, seq) is as unique. One index now serves as
-- key, page order and per-user counts; a comment finds its video by the video's seq.
alter table interactions add column video_seq bigint;
update interactions c set video_seq = v.seq
  from interactions v
 where c.video_id is not null and v.id = c.video_id;
alter table interactions drop constraint interactions_pkey;
drop index interactions_user_page;
alter table interactions add constraint interactions_pkey primary key (user_id, seq);
