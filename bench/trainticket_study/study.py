import sys
from common import *
from stats import *
def topk_credit(sc,svcs,rc,k):
    v=sc.get(rc,0.0)
    g=sum(1 for s in svcs if s!=rc and sc.get(s,0.0)>v+1e-12)
    e=sum(1 for s in svcs if s!=rc and abs(sc.get(s,0.0)-v)<=1e-12)
    slots=k-g
    return 0.0 if slots<=0 else min(1.0,slots/(e+1))
def rank_of(sc,svcs,rc):
    v=sc.get(rc,0.0); return 1+sum(1 for s in svcs if s!=rc and sc.get(s,0.0)>v+1e-12)
split_cache={}
import os
SKIP=float(os.environ.get('POST_SKIP','0'))*1e9
BASE=os.environ.get('BASE','pre')
_normal=None
def get(c):
    global _normal
    if c['case'] not in split_cache:
        pre,post=split(c); i=inj_ns(c)
        post=[t for t in post if t.start>=i+SKIP]
        if BASE=='prenormal':
            if _normal is None: _normal=build(data()['normal.otlp.jsonl.gz'])
            pre=_normal+pre
        elif BASE=='normal':
            if _normal is None: _normal=build(data()['normal.otlp.jsonl.gz'])
            pre=_normal
        split_cache[c['case']]=(pre,post)
    return split_cache[c['case']]
if __name__=='__main__':
    sel=sys.argv[1:] or [n for n,_ in STATS]
    res={}
    print('%-30s'%'stat'+''.join('%14s'%f for f in ('exc@1/@3','ret@1/@3','cpu@1/@3','all24@1/@3'))+'   ranks(exc | ret | cpu)')
    for name,f in STATS:
        if name not in sel: continue
        acc={}; ranks={}
        for c in CASES:
            pre,post=get(c); svcs=services(pre,post)
            sc=f(pre,post)
            fa=c['fault'][:3]
            acc.setdefault(fa,[]).append((topk_credit(sc,svcs,c['root_cause_service'],1),topk_credit(sc,svcs,c['root_cause_service'],3)))
            ranks.setdefault(fa,[]).append(rank_of(sc,svcs,c['root_cause_service']))
        def fm(L): return '%5.2f/%4.2f'%(sum(x for x,_ in L)/len(L),sum(y for _,y in L)/len(L))
        both=acc['exc']+acc['ret']
        print('%-30s'%name+''.join('%14s'%fm(acc[k]) for k in ('exc','ret','cpu'))+'%14s'%fm(both)+'   '+' '.join(map(str,ranks['exc']))+' | '+' '.join(map(str,ranks['ret']))+' | '+' '.join(map(str,ranks['cpu'])))
