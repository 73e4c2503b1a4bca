-- Bonus credits issued, spent and forfeited per campaign (the grant command's campaign, or its
-- source when it has none), for grants issued in a period.
-- Params: from, to (DateTime64).
SELECT
    if(g.campaign = '', concat('(', g.source, ')'), g.campaign) AS campaign,
    count() AS grants,
    sum(b.issued) / 1e6 AS issued_credits,
    sum(b.spent) / 1e6 AS spent_credits,
    sum(b.forfeited) / 1e6 AS forfeited_credits,
    round(100 * sum(b.forfeited) / greatest(sum(b.issued), 1), 2) AS forfeited_percent
FROM grant_commands AS g FINAL
LEFT JOIN
(
    SELECT user_id, grant_id,
           sum(issued_micros) AS issued, sum(spent_micros) AS spent, sum(forfeited_micros) AS forfeited
    FROM bonus_by_grant
    GROUP BY user_id, grant_id
) AS b ON b.user_id = g.user_id AND b.grant_id = g.grant_id
WHERE g.issued_at >= {from:DateTime64(3, 'UTC')} AND g.issued_at < {to:DateTime64(3, 'UTC')}
GROUP BY campaign
ORDER BY forfeited_credits DESC, campaign
