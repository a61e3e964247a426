"""False-alarm check: apply statistics to normal.otlp split in two halves, and to each case's pre-inject part split in halves;
compare top-1 score there with the root-cause score / top score after inject."""
import sys
from common import *
from stats import *
sel=sys.argv[1:] or ['s6_new_plus_vanished','s6_name_rate_abs','s2_nch_abs','s4_fanout_abs','s3_trunc_nextcallee','s1_p90_abs','s1_self_med_up']
F=dict(STATS)
nt=build(data()['normal.otlp.jsonl.gz']); h=(nt[0].start+nt[-1].start)/2
na=[t for t in nt if t.start<h]; nb=[t for t in nt if t.start>=h]
print('normal halves: %d / %d traces'%(len(na),len(nb)))
print('%-24s %10s %-28s %12s %12s %12s %12s'%('stat','normTop','normTopSvc','preSplitTop','postTop','postRC','RC>preTop'))
for n in sel:
    f=F[n]; sc=f(na,nb); top=max(sc.items(),key=lambda kv:kv[1]) if sc else ('',0)
    ps=[];pt=[];pr=[];hit=0
    for c in CASES:
        if c['fault']=='cpu_contention': continue
        pre,post=split(c); k=len(pre)//2
        a=f(pre[:k],pre[k:]); b=f(pre,post)
        ps.append(max(a.values(),default=0)); pt.append(max(b.values(),default=0)); rcv=b.get(c['root_cause_service'],0); pr.append(rcv)
        hit+= rcv>ps[-1]
    print('%-24s %10.3f %-28s %12.3f %12.3f %12.3f %9d/24'%(n,top[1],top[0][3:],statistics.median(ps),statistics.median(pt),statistics.median(pr),hit))
